//! Wall time per stage of a long command (`cargo xtask test`), printed as a table at the end,
//! also when a stage fails: CI has a fixed budget, and the table shows where it goes.

use std::time::Instant;

use anyhow::Result;

#[derive(Default)]
pub struct Stages {
    done: Vec<(String, f64, bool)>,
}

impl Stages {
    /// Runs one stage and records its wall time and outcome.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let r = f();
        self.done
            .push((name.to_string(), start.elapsed().as_secs_f64(), r.is_ok()));
        r
    }

    /// The table: one line per stage, then the total.
    pub fn table(&self) -> String {
        let width = self.done.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
        let mut s = String::from("xtask: stage times\n");
        for (name, secs, ok) in &self.done {
            let status = if *ok { "" } else { "  FAILED" };
            s.push_str(&format!("  {name:<width$}  {secs:>7.0} s{status}\n"));
        }
        let total: f64 = self.done.iter().map(|(_, t, _)| t).sum();
        s.push_str(&format!("  {:<width$}  {total:>7.0} s\n", "total"));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_stage_with_its_outcome_and_the_total() {
        let mut st = Stages::default();
        st.run("setup", || Ok(())).unwrap();
        assert!(st
            .run("clippy", || -> Result<()> { anyhow::bail!("lint") })
            .is_err());
        let t = st.table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].trim_start().starts_with("setup") && !lines[1].contains("FAILED"));
        assert!(lines[2].trim_start().starts_with("clippy") && lines[2].ends_with("FAILED"));
        assert!(lines[3].trim_start().starts_with("total"));
    }
}
