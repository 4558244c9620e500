use selfplay::tasks::connect4::{solve_moves, Connect4, UNBOUNDED};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let moves = f[1].split("\"\"").nth(3).unwrap();
        let action: u16 = f[f.len() - 3].parse().unwrap();
        let best: i32 = f[f.len() - 2].parse().unwrap();
        let agent = f[f.len() - 1];
        let pos = Connect4::from_moves(moves).unwrap();
        let scores = solve_moves(&pos, UNBOUNDED).unwrap();
        let chosen = scores.iter().find(|s| s.0 == action).map(|s| s.1).unwrap();
        let cat = match (best.signum(), chosen.signum()) {
            (1, 1) => "win: slower win",
            (1, 0) => "win: threw to draw",
            (1, -1) => "win: threw to loss",
            (0, -1) => "draw: threw to loss",
            (-1, -1) => "loss: lost faster",
            _ => "other",
        };
        *counts.entry((agent.to_string(), cat)).or_insert(0) += 1;
    }
    for (k, v) in counts {
        println!("{k:?} {v}");
    }
}
