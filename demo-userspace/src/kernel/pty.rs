//! A pseudo-terminal for a command that demo starts under the view: the command gets its
//! terminal side as stdin, stdout, stderr and controlling terminal, and the loader keeps the
//! other side, to show what the command writes and to type the user's keys into it.

use std::{
    fs::File,
    io,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
};

use nix::{
    fcntl::OFlag,
    pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt},
};

/// Why no pseudo-terminal could be made.
#[derive(Debug, thiserror::Error)]
#[error("open a pseudo-terminal for the command: {0}")]
pub struct PtyError(#[from] io::Error);

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermSize {
    pub rows: u16,
    pub cols: u16,
}

/// The loader's side of a pseudo-terminal.
pub struct Pty {
    master: PtyMaster,
}

impl Pty {
    /// Opens a pseudo-terminal of `size`: the loader's side, and the terminal side for the
    /// command ([`super::spawn::ChildIo::Terminal`]). Both are close-on-exec: the command gets
    /// the terminal side as its stdio only (dup2 clears the flag there), and never the loader's
    /// side, so its terminal hangs up when the loader exits. The loader holds its copy of the
    /// terminal side until the trace of the command ends, then closes it, so that its side
    /// reads end of file (EIO) once the command and all it started are gone too.
    pub fn open(size: TermSize) -> Result<(Self, OwnedFd), PtyError> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(io::Error::from)?;
        grantpt(&master).map_err(io::Error::from)?;
        unlockpt(&master).map_err(io::Error::from)?;
        let path = ptsname_r(&master).map_err(io::Error::from)?;
        let terminal = nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io::Error::from)?;
        let pty = Self { master };
        pty.resize(size)?;
        Ok((pty, terminal))
    }

    /// Sets the terminal's size; the kernel sends the command's foreground process group
    /// SIGWINCH, as a terminal emulator's resize does.
    pub fn resize(&self, size: TermSize) -> io::Result<()> {
        let winsize = libc::winsize {
            ws_row: size.rows.max(1),
            ws_col: size.cols.max(1),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, a local that outlives the call.
        if unsafe {
            libc::ioctl(
                self.master.as_raw_fd(),
                libc::TIOCSWINSZ,
                &raw const winsize,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// A handle on the loader's side, to read what the command writes (or to write its input).
    /// Reading fails with EIO once no process holds the terminal side any more.
    pub fn loader_side(&self) -> io::Result<File> {
        let fd = nix::unistd::dup(self.master.as_fd()).map_err(io::Error::from)?;
        // dup does not carry close-on-exec over.
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(io::Error::from)?;
        Ok(File::from(fd))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// The terminal side echoes what is typed on the loader's side and turns Enter (a carriage
    /// return) into a new line, as a terminal in its default mode does for `getchar()`.
    #[test]
    fn what_the_loader_types_reaches_the_terminal_side_as_a_line() {
        let (pty, terminal) = Pty::open(TermSize { rows: 5, cols: 40 }).unwrap();
        let mut loader = pty.loader_side().unwrap();
        loader.write_all(b"ab\r").unwrap();
        let mut terminal = File::from(terminal);
        let mut line = [0u8; 3];
        terminal.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ab\n");
        let mut echo = [0u8; 4];
        loader.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ab\r\n");
    }

    #[test]
    fn the_terminal_has_the_size_asked_for_and_the_next_one() {
        let (pty, terminal) = Pty::open(TermSize { rows: 7, cols: 33 }).unwrap();
        let size = || {
            // SAFETY: winsize is plain data that TIOCGWINSZ fills in.
            let mut winsize: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: TIOCGWINSZ writes one winsize to a local.
            let done =
                unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCGWINSZ, &raw mut winsize) };
            assert_eq!(done, 0);
            (winsize.ws_row, winsize.ws_col)
        };
        assert_eq!(size(), (7, 33));
        pty.resize(TermSize { rows: 9, cols: 61 }).unwrap();
        assert_eq!(size(), (9, 61));
    }
}
