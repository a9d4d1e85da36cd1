//! The overhead kernels `plinth calibrate` runs in a guest and, the same binary, on the host:
//! one CPU-bound (SHA-256 over a buffer that stays in cache) and one memory-bound (copies
//! between two buffers far larger than any cache). Each runs for [`RUN`] and says how many
//! MiB per second it got through.

use std::time::{Duration, Instant};

use plinth_proto::guest::BenchKernel;
use sha2::{Digest, Sha256};

/// How long a kernel runs.
pub(crate) const RUN: Duration = Duration::from_secs(1);

const MIB: usize = 1 << 20;

/// Runs `kernel` for [`RUN`]; MiB per second.
pub(crate) fn run(kernel: BenchKernel) -> f64 {
    match kernel {
        BenchKernel::Cpu => {
            let block = vec![0x5a_u8; MIB];
            rate(|| {
                std::hint::black_box(Sha256::digest(&block));
                1
            })
        }
        BenchKernel::Memory => {
            const BUFFER: usize = 32 * MIB;
            let (mut a, mut b) = (vec![1_u8; BUFFER], vec![2_u8; BUFFER]);
            rate(|| {
                a.copy_from_slice(&b);
                std::mem::swap(&mut a, &mut b);
                std::hint::black_box(&a);
                BUFFER / MIB
            })
        }
    }
}

/// Repeats `step` (which says how many MiB it did) for [`RUN`]; MiB per second.
fn rate(mut step: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < RUN {
        done += step();
    }
    done as f64 / start.elapsed().as_secs_f64()
}
