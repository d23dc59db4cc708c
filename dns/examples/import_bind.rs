//! Converts a BIND9 named.conf to Postern's `[dns]` section.
//!
//! `cargo run -p postern-dns --example import_bind -- /etc/bind/named.conf > dns.toml`
//!
//! The TOML goes to stdout, one warning per line to stderr.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: import_bind NAMED.CONF")?;
    let text = std::fs::read_to_string(path)?;
    let (toml, warnings) = postern_dns::import_bind(&text)?;
    println!("{}", toml.trim_end());
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
