//! The sweeps reuse the input's runs and designs for the break-even points of inputs the
//! simulation does not read: those inputs must indeed change neither.

mod common;

use common::{estate, options};
use plinth_compare::sensitivity::PARAMETERS;
use plinth_compare::{Execution, report, simulate_runs};
use plinth_model::quantity::Money;

#[test]
fn inputs_marked_not_simulated_change_neither_runs_nor_designs() {
    let mut base = estate(&["examples/enterprise"]);
    // The example declares no price of downtime: give it one, so every input moves.
    base.price_sheet.spec.downtime_per_workload_hour = Money(500_000_000);
    let o = options(2, 20);
    let runs = simulate_runs(&base, &o, Execution::default(), &|| {}).expect("runs");
    let designs = report(&base, &o, &runs).expect("report").designs;
    let unread: Vec<_> = PARAMETERS.iter().filter(|p| !p.simulated).collect();
    assert!(unread.len() >= 4, "the money-only inputs are marked");
    for p in unread {
        assert!(!(p.is_zero)(&base), "{} is 0 in the input", p.name);
        for f in [1.0 / p.range, p.range] {
            let mut scaled = base.clone();
            (p.scale)(&mut scaled, f);
            assert_ne!(
                (p.value)(&scaled),
                (p.value)(&base),
                "{} ×{f} changes the input",
                p.name
            );
            let again = simulate_runs(&scaled, &o, Execution::default(), &|| {}).expect("runs");
            assert_eq!(again, runs, "{} ×{f} changed the runs", p.name);
            let r = report(&scaled, &o, &runs).expect("report");
            assert_eq!(r.designs, designs, "{} ×{f} changed a design", p.name);
        }
    }
}
