//! Task generation throughput per family (tasks/s, with the solver's
//! reference and optimal step count), spec parsing (the first step of every
//! play), and verification of solution texts with each family's own
//! verifier. `cargo bench --bench tasks`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use selfplay::tasks::{Family, Game};

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    for &family in Family::ALL {
        for difficulty in [0.5f32, 1.0] {
            let n = 200u64;
            group.throughput(Throughput::Elements(n));
            let id = BenchmarkId::new(family.name(), difficulty);
            group.bench_with_input(id, &difficulty, |b, &d| {
                b.iter(|| {
                    (0..n)
                        .map(|s| family.generate(d, s).spec.len())
                        .sum::<usize>()
                })
            });
        }
    }
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_spec");
    for &family in Family::ALL {
        let tasks: Vec<_> = (0..200).map(|s| family.generate(1.0, s)).collect();
        group.throughput(Throughput::Elements(tasks.len() as u64));
        group.bench_function(family.name(), |b| {
            b.iter(|| tasks.iter().filter(|t| Game::from_task(t).is_ok()).count())
        });
    }
    group.finish();
}

/// Verifies each task's reference solution (spec parse + independent
/// check). Connect Four re-solves every move, so it is benched on the
/// positions whose reference is exact.
fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    for &family in Family::ALL {
        let tasks: Vec<_> = (0..400)
            .map(|s| family.generate(1.0, s))
            .filter(|t| !t.reference_solution.contains("heuristic"))
            .take(200)
            .collect();
        group.throughput(Throughput::Elements(tasks.len() as u64));
        group.bench_function(family.name(), |b| {
            b.iter(|| {
                tasks
                    .iter()
                    .filter(|t| t.verify(&t.reference_solution))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, generation, parsing, verification);
criterion_main!(benches);
