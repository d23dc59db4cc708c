//! Standard output of the CLI commands. Writes go through the locked stdout and report a closed
//! pipe (`postern domain list | head -1`) as [`StdoutClosed`], which `main` turns into a quiet exit
//! with status 0, as `cat` or `grep` end when their reader is gone; `println!` would panic instead.
//! (Rust ignores SIGPIPE, so a closed pipe shows up as `EPIPE` on the write, POSIX `write(2)`.)

use std::fmt;
use std::io::Write;

/// The reader of standard output has gone away: stop writing, exit quietly.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Writes `args` to standard output; `Err(StdoutClosed)` when the pipe is closed, other write
/// errors (disk full, ...) as they are.
pub fn write(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// `println!` for the CLI: returns from the enclosing function (which must return an
/// `anyhow::Result`) when standard output cannot be written.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` for the CLI, as [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))?
    };
}

pub(crate) use {out, outln};
