//! Pseudo-terminals and their window size.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::errno::{check, SysResult};
use super::file::open;

/// A new pseudo-terminal from the devpts instance behind `/dev/ptmx`: (master, slave).
pub fn open_pty() -> SysResult<(OwnedFd, OwnedFd)> {
    let master = open("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on the master we own with valid argument pointers.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // TIOCGPTPEER opens the slave without a path lookup that could be raced.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let slave = if slave >= 0 {
        // SAFETY: a fresh descriptor.
        unsafe { OwnedFd::from_raw_fd(slave) }
    } else {
        let mut n: libc::c_uint = 0;
        // SAFETY: as above.
        check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
        open(&format!("/dev/pts/{n}"), libc::O_RDWR | libc::O_NOCTTY)?
    };
    Ok((master, slave))
}

pub fn get_winsize(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: ws is written by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: a valid winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}
