//! What one resolver is told: its network's records file, the addresses it listens on, how it
//! forwards. The same settings as a command line ([`Config::to_args`] and
//! [`Config::from_args`]), which is how [`crate::launch`] hands them to the process it starts.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::records::{NetworkFiles, WatchMode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The network's records file, `DIR/NETWORK.json` (its siblings in DIR are read too).
    pub records: PathBuf,
    /// Where to listen (UDP and TCP): the network's gateway addresses on its bridge.
    pub listen: Vec<IpAddr>,
    pub port: u16,
    /// An `--internal` network: nothing is forwarded.
    pub internal: bool,
    /// Where the upstream servers come from (re-read when it changes): the host's by default.
    pub resolv_conf: PathBuf,
    /// Upstream servers given explicitly (`--upstream`), instead of the resolv.conf's.
    pub upstreams: Vec<SocketAddr>,
    /// Whether the host's loopback servers (`127.0.0.53`) can be reached from where the
    /// resolver runs: true in the host's network namespace (see [`crate::upstream`]).
    pub host_loopback: bool,
    /// How long one upstream server has to answer before the next is asked.
    pub timeout: Duration,
    /// How changes to the records are noticed.
    pub watch: WatchMode,
    /// Lock this pid file for the resolver's lifetime (`DIR/NETWORK.pid`); exit when it is
    /// removed or replaced.
    pub pid_file: Option<PathBuf>,
    /// Write `ready PID` (or `error JSON`) on this descriptor once listening, then close it.
    pub ready_fd: Option<RawFd>,
}

impl Config {
    pub fn new(records: impl Into<PathBuf>, listen: Vec<IpAddr>) -> Config {
        Config {
            records: records.into(),
            listen,
            port: 53,
            internal: false,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            upstreams: Vec::new(),
            host_loopback: true,
            timeout: Duration::from_millis(2000),
            watch: WatchMode::Inotify,
            pid_file: None,
            ready_fd: None,
        }
    }

    /// The network's files (the records' directory and the network's name).
    pub fn files(&self) -> Result<NetworkFiles> {
        NetworkFiles::from_records(&self.records)
    }

    pub fn validate(&self) -> Result<()> {
        self.files()?;
        if self.listen.is_empty() {
            return Err(Error::config("--listen", "at least one address to listen on is needed"));
        }
        for (i, a) in self.listen.iter().enumerate() {
            if self.listen[..i].contains(a) {
                return Err(Error::config("--listen", format!("{a} is given twice")));
            }
        }
        Ok(())
    }

    /// The command line that gives back this configuration.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec!["--records".to_owned(), self.records.display().to_string()];
        for l in &self.listen {
            a.extend(["--listen".to_owned(), l.to_string()]);
        }
        if self.port != 53 {
            a.extend(["--port".to_owned(), self.port.to_string()]);
        }
        if self.internal {
            a.push("--internal".to_owned());
        }
        if self.resolv_conf != Path::new("/etc/resolv.conf") {
            a.extend(["--resolv-conf".to_owned(), self.resolv_conf.display().to_string()]);
        }
        for u in &self.upstreams {
            a.extend(["--upstream".to_owned(), u.to_string()]);
        }
        if !self.host_loopback {
            a.push("--no-host-loopback".to_owned());
        }
        if self.timeout != Duration::from_millis(2000) {
            a.extend(["--timeout-ms".to_owned(), self.timeout.as_millis().to_string()]);
        }
        if self.watch == WatchMode::Stat {
            a.extend(["--watch".to_owned(), "stat".to_owned()]);
        }
        if let Some(p) = &self.pid_file {
            a.extend(["--pid-file".to_owned(), p.display().to_string()]);
        }
        if let Some(fd) = self.ready_fd {
            a.extend(["--ready-fd".to_owned(), fd.to_string()]);
        }
        a
    }

    /// Read a command line; errors name the flag.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Config> {
        let mut c = Config::new(PathBuf::new(), Vec::new());
        let mut it = args.iter().map(AsRef::as_ref);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| Error::config(flag, "needs a value"));
            match flag {
                "--records" => c.records = PathBuf::from(value()?),
                "--listen" => {
                    let v = value()?;
                    c.listen.push(
                        v.parse().map_err(|_| {
                            Error::config(flag, format!("not an IP address: {v:?}"))
                        })?,
                    );
                }
                "--port" => {
                    let v = value()?;
                    c.port =
                        v.parse().map_err(|_| Error::config(flag, format!("not a port: {v:?}")))?;
                }
                "--internal" => c.internal = true,
                "--resolv-conf" => c.resolv_conf = PathBuf::from(value()?),
                "--upstream" => {
                    let v = value()?;
                    let addr = v
                        .parse::<SocketAddr>()
                        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                        .map_err(|_| {
                            Error::config(flag, format!("not an address or address:port: {v:?}"))
                        })?;
                    c.upstreams.push(addr);
                }
                "--no-host-loopback" => c.host_loopback = false,
                "--timeout-ms" => {
                    let v = value()?;
                    let ms: u64 =
                        v.parse().ok().filter(|ms| (1..=60_000).contains(ms)).ok_or_else(|| {
                            Error::config(
                                flag,
                                format!("must be 1 to 60000 milliseconds, got {v:?}"),
                            )
                        })?;
                    c.timeout = Duration::from_millis(ms);
                }
                "--watch" => {
                    c.watch = match value()? {
                        "inotify" => WatchMode::Inotify,
                        "stat" => WatchMode::Stat,
                        v => {
                            return Err(Error::config(
                                flag,
                                format!("must be inotify or stat, got {v:?}"),
                            ))
                        }
                    }
                }
                "--pid-file" => c.pid_file = Some(PathBuf::from(value()?)),
                "--ready-fd" => {
                    let v = value()?;
                    c.ready_fd =
                        Some(v.parse().ok().filter(|fd: &RawFd| *fd >= 0).ok_or_else(|| {
                            Error::config(flag, format!("not a descriptor: {v:?}"))
                        })?);
                }
                other => return Err(Error::config(other, "unknown flag")),
            }
        }
        if c.records.as_os_str().is_empty() {
            return Err(Error::config("--records", "is required"));
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_survives_its_command_line() {
        let mut c = Config::new(
            "/run/ns/dns/web.json",
            vec!["198.51.100.1".parse().unwrap(), "2001:db8:a::1".parse().unwrap()],
        );
        assert_eq!(Config::from_args(&c.to_args()).unwrap(), c);
        c.port = 5353;
        c.internal = true;
        c.resolv_conf = "/run/ns/resolv.conf".into();
        c.upstreams =
            vec!["192.0.2.53:53".parse().unwrap(), "[2001:db8::53]:5353".parse().unwrap()];
        c.host_loopback = false;
        c.timeout = Duration::from_millis(300);
        c.watch = WatchMode::Stat;
        c.pid_file = Some("/run/ns/dns/web.pid".into());
        c.ready_fd = Some(3);
        assert_eq!(Config::from_args(&c.to_args()).unwrap(), c);
    }

    #[test]
    fn bad_command_lines_name_the_flag() {
        let e = |args: &[&str]| Config::from_args(args).unwrap_err().path.unwrap();
        assert_eq!(e(&["--listen", "198.51.100.1"]), "--records");
        assert_eq!(e(&["--records", "/x/web.json"]), "--listen");
        assert_eq!(e(&["--records", "/x/web.json", "--listen", "nope"]), "--listen");
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--listen", "::1"]),
            "--listen"
        );
        assert_eq!(e(&["--records", "/x/web.txt", "--listen", "::1"]), "records");
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--port", "99999"]),
            "--port"
        );
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--watch", "poll"]),
            "--watch"
        );
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--ready-fd", "-1"]),
            "--ready-fd"
        );
        assert_eq!(e(&["--records", "/x/web.json", "--listen"]), "--listen");
        assert_eq!(e(&["--bogus"]), "--bogus");
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--upstream", "x"]),
            "--upstream"
        );
        assert_eq!(
            e(&["--records", "/x/web.json", "--listen", "::1", "--timeout-ms", "0"]),
            "--timeout-ms"
        );
        let c = Config::from_args(&[
            "--records",
            "/x/web.json",
            "--listen",
            "::1",
            "--upstream",
            "192.0.2.1",
        ])
        .unwrap();
        assert_eq!(c.upstreams, vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap()]);
    }
}
