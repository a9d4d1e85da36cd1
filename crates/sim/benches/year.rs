//! One simulated year of `examples/enterprise` per environment (issue 5's target: < 0.25 s;
//! `plinth compare` runs 64 of them). Setup (capacity plan, initial placement) included.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::{Input, SourceFile, load};
use plinth_sim::{Options, simulate};

fn enterprise() -> plinth_model::Estate {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/enterprise");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/enterprise")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut input = Input::default();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        input.add(SourceFile::new(f.display().to_string(), text));
    }
    load(&input).estate.expect("valid example")
}

fn year(c: &mut Criterion) {
    let estate = enterprise();
    let mut g = c.benchmark_group("simulate_year_enterprise");
    g.sample_size(20);
    for env in EnvironmentType::ALL {
        let options = Options {
            env,
            seed: 42,
            duration: 365 * 86_400_000,
        };
        g.bench_function(env.cli_name(), |b| {
            b.iter(|| simulate(black_box(&estate), black_box(&options)).expect("run"))
        });
    }
    g.finish();
}

criterion_group!(benches, year);
criterion_main!(benches);
