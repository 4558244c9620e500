//! Importing public task formats from sample files written here, then
//! `eval --tasks` on each imported store.

mod common;
use common::*;
use selfplay::tasks::connect4::{self, Connect4};
use std::path::Path;
use std::process::Command;

/// Pons-format lines for a few late random positions, scored by our solver.
fn pons_lines() -> String {
    let mut out = String::new();
    let mut seed = 7u64;
    while out.lines().count() < 6 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut pos = Connect4::new();
        let mut moves = String::new();
        let mut legal = Vec::new();
        for k in 0..24u64 {
            legal.clear();
            pos.legal_actions(&mut legal);
            if legal.is_empty() {
                break;
            }
            let a = legal[((seed >> (k % 50)) as usize + k as usize) % legal.len()];
            pos.step(a);
            moves.push(char::from(b'1' + a as u8));
        }
        if pos.is_terminal() {
            continue;
        }
        if let Some(score) = connect4::solve(&pos, 5_000_000) {
            out += &format!("{moves} {score}\n");
        }
    }
    out
}

#[test]
fn every_format_imports_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A model whose spaces cover sudoku too.
    let with_sudoku = |args: &[&str]| {
        let mut a = vec![
            "--set",
            "families.sudoku.weight=1",
            "--set",
            "families.sudoku.difficulty=[0.0, 0.2]",
        ];
        a.extend_from_slice(args);
        selfplay(&out, &a)
    };
    ok(&with_sudoku(&["init"]));

    let cd = dir.path().join("countdown.parquet");
    let py = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
             pq.write_table(pa.table({'target': [24, 10, 98], 'nums': [[1, 1, 4, 6], [2, 3, 4], [44, 19, 35]]}), sys.argv[1])",
        )
        .arg(&cd)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", stderr(&py));
    let g24 = dir.path().join("24.csv");
    std::fs::write(&g24, "Rank,Puzzles,AMT (s),Solved rate\n1,1 1 4 6,5.4,99%\n2,3 3 8 8,6.1,80%\n3,1 2 3 4,4.0,99%\n").unwrap();
    let c4 = dir.path().join("Test_L3_R1");
    std::fs::write(&c4, pons_lines()).unwrap();
    let su = dir.path().join("sudoku.csv");
    std::fs::write(
        &su,
        "quizzes,solutions\n530070000600195000098000060800060003400803001700020006060000280000419005000080079,x\n",
    )
    .unwrap();

    for (file, format, family, rows) in [
        (&cd, "countdown-parquet", "countdown", 3),
        (&g24, "game24", "game24", 3),
        (&c4, "connect4-pons", "connect4", 6),
        (&su, "sudoku", "sudoku", 1),
    ] {
        let f = file.to_str().unwrap();
        let text = ok(&with_sudoku(&["tasks", "--import", f, "--format", format]));
        assert!(
            text.contains(&format!("{rows} {family} tasks")),
            "{format}: {text}"
        );
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let store = out.join(format!("imported/name={stem}"));
        let store = store.to_str().unwrap();
        let report = ok(&with_sudoku(&["eval", "--tasks", store, "--model", "best"]));
        let want = if family == "connect4" {
            "vs solver"
        } else {
            "vs none"
        };
        assert!(
            report.contains(family) && report.contains("all") && report.contains(want),
            "{format}: {report}"
        );
        assert!(report.contains(&format!("n={rows}")), "{format}: {report}");
        // The same rows land in a committed evals-schema store.
        let written = out.join(format!("imported_evals/name={stem}"));
        let model = std::fs::read_dir(&written)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        assert!(
            model.join("part-00000.parquet").exists(),
            "{}",
            model.display()
        );
        let py = Command::new(python())
            .arg("-c")
            .arg(
                "import sys, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1]).to_pylist()\n\
                  print(sorted((r['family'], r['bucket'], r['games']) for r in t))",
            )
            .arg(model.join("part-00000.parquet"))
            .output()
            .unwrap();
        assert!(py.status.success(), "{}", stderr(&py));
        let rows_text = String::from_utf8_lossy(&py.stdout).to_string();
        assert!(
            rows_text.contains(&format!("('{family}', 'all', {rows})")),
            "{format}: {rows_text}"
        );
        // Every position is scored, and the eval says so.
        if family == "connect4" {
            assert!(
                rows_text.contains(&format!("('{family}', 'unscored', {rows})")),
                "{format}: {rows_text}"
            );
            assert!(report.contains("unscored"), "{report}");
        }
        check_results(&out, &stem, family, rows);
    }
}

/// The per-position results of `eval --tasks` on store `stem`, read by
/// DuckDB: one row per position and agent (the searching candidate and
/// the network alone, which searches nothing), and tallies that agree
/// with the evals rows written beside them.
fn check_results(out: &Path, stem: &str, family: &str, positions: u64) {
    let results = out.join(format!("imported_results/name={stem}"));
    let evals = out.join(format!("imported_evals/name={stem}"));
    let py = Command::new(python())
        .arg("-c")
        .arg(RESULTS_CHECK)
        .arg(&results)
        .arg(&evals)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", stderr(&py));
    let got: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    let agents = got["agents"].as_object().unwrap();
    let names: Vec<&str> = agents.keys().map(String::as_str).collect();
    assert_eq!(names, ["candidate", "network"], "{got}");
    assert_eq!(
        got["rows"], got["distinct"],
        "one row per position and agent"
    );
    for (agent, a) in agents {
        let (r, e) = (&a["results"], &a["evals"]);
        assert_eq!(r["rows"], positions, "{agent}: {got}");
        let sims = r["simulations"].as_array().unwrap();
        if agent == "network" {
            assert_eq!(sims, &[serde_json::json!(0)], "{got}");
        } else {
            assert!(sims.iter().all(|s| s.as_u64() > Some(0)), "{got}");
        }
        assert_eq!(
            r["opponent"],
            if family == "connect4" {
                "solver"
            } else {
                "none"
            }
        );
        if family == "connect4" {
            // `optimal` is the aggregate's numerator and denominator, and
            // `scored` false counts the unscored positions.
            assert_eq!(r["optimal"], e["all"]["wins"], "{agent}: {got}");
            assert_eq!(r["checked"], e["all"]["games"], "{agent}: {got}");
            assert_eq!(r["unscored"], e["unscored"]["wins"], "{agent}: {got}");
            assert_eq!(r["solver_scores"], r["checked"], "{agent}: {got}");
            // A move's own score equals the position's exactly when it is
            // optimal and is below it otherwise; the outcome row tallies it.
            assert_eq!(r["move_scores"], r["checked"], "{agent}: {got}");
            assert_eq!(r["misranked"], 0, "{agent}: {got}");
            assert_eq!(
                r["same_outcome"], e["same_outcome"]["wins"],
                "{agent}: {got}"
            );
            assert_eq!(r["checked"], e["same_outcome"]["games"], "{agent}: {got}");
        } else {
            assert_eq!(r["successes"], e["all"]["wins"], "{agent}: {got}");
            assert_eq!(r["checked"], 0, "{agent}: {got}");
        }
    }
}

/// Per agent: the results store's figures and the evals rows by bucket.
const RESULTS_CHECK: &str = r#"
import json, sys, duckdb
results, evals = (f"read_parquet('{d}/**/*.parquet', hive_partitioning = true)" for d in sys.argv[1:3])
con = duckdb.connect()
one = lambda q, *args: con.execute(q, *args).fetchone()
out = {"rows": one(f"select count(*) from {results}")[0],
       "distinct": one(f"select count(distinct (task_id, agent)) from {results}")[0], "agents": {}}
for (agent,) in con.execute(f"select distinct agent from {results} order by 1").fetchall():
    rows, optimal, checked, unscored, scores, successes, opponent = one(
        "select count(*), count(*) filter (where optimal), count(optimal), count(*) filter (where not scored), "
        "count(solver_score), count(*) filter (where outcome = 'success'), string_agg(distinct opponent, ',') "
        f"from {results} where agent = ?", [agent])
    move_scores, misranked, same = one(
        "select count(move_score), count(*) filter (where optimal != (move_score = solver_score) or move_score > solver_score), "
        f"count(*) filter (where sign(move_score) = sign(solver_score)) from {results} where agent = ?", [agent])
    sims = [r[0] for r in con.execute(f"select distinct simulations from {results} where agent = ? order by 1", [agent]).fetchall()]
    buckets = con.execute(f"select bucket, games, wins from {evals} where agent = ?", [agent]).fetchall()
    out["agents"][agent] = {
        "results": {"rows": rows, "optimal": optimal, "checked": checked, "unscored": unscored,
                    "solver_scores": scores, "move_scores": move_scores, "misranked": misranked,
                    "same_outcome": same, "successes": successes, "opponent": opponent, "simulations": sims},
        "evals": {b: {"games": g, "wins": w} for b, g, w in buckets},
    }
print(json.dumps(out))
"#;

#[test]
fn bad_import_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let f = dir.path().join("hands.txt");
    std::fs::write(&f, "1 2 3 4\n1 2 x 4\n").unwrap();
    let f = f.to_str().unwrap();
    fails_with(
        &selfplay(&out, &["tasks", "--import", f, "--format", "game24"]),
        &["hands.txt", "row 2", "four integers"],
    );
    fails_with(
        &selfplay(&out, &["tasks", "--import", f, "--format", "chess-pgn"]),
        &["--format chess-pgn", "game24"],
    );
    assert!(!out.join("imported").exists());
}
