//! `fas-boards list` and `fas-boards show`: the board profiles.

use anyhow::Result;
use fas_boards::profile::Profile;

/// Lists the built-in board profiles.
pub fn list() -> Result<bool> {
    for name in fas_boards::profile::names() {
        let p = Profile::load(name)?;
        println!("{name:<18} {:<28} {}", p.target, p.description);
    }
    Ok(true)
}

/// Prints a board profile and the fas-edge config it implies.
pub fn show(board: &str) -> Result<bool> {
    let p = Profile::load(board)?;
    println!("{}", toml::to_string_pretty(&p)?);
    println!("# /etc/fas/edge.toml for this board:\n{}", p.edge_config());
    Ok(true)
}
