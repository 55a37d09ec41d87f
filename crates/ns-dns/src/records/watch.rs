//! Picking up changes to the records without a restart. Two ways, chosen at start:
//!
//! - **inotify** (the default): the directory is watched; a file renamed in, written or
//!   removed is re-read when its event arrives. The server handles that event before the
//!   queries of the same wake-up, so a query sent after an update is answered from it. No cost
//!   per query.
//! - **stat** (when inotify cannot be had, e.g. its per-user instance limit is reached): the
//!   own network's file is `stat`ed once per batch of queries — a new inode, size or mtime
//!   means re-read (writers rename a new file in, so even two updates in one timestamp tick
//!   differ) — and the other networks' files once per tick.
//!
//! A file that cannot be read or parsed leaves the last good table in place and is reported.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::fd::RawFd;

use super::file::read_records;
use super::layout::{network_of_records_file, NetworkFiles};
use super::table::{Table, View};
use crate::error::Result;
use crate::sys::{self, FileStamp, Inotify};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    Inotify,
    Stat,
}

pub struct Watcher {
    files: NetworkFiles,
    own_path: CString,
    inotify: Option<Inotify>,
    stamps: HashMap<String, FileStamp>,
    own_present: bool,
    view: View,
    reloads: u64,
    log: fn(&str),
}

const WATCH_MASK: u32 = libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CLOSE_WRITE
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

impl Watcher {
    /// Load the network's records (and its siblings'), watching the directory first so that
    /// no change between the two is missed. `log` receives one line per problem.
    pub fn open(files: NetworkFiles, prefer: WatchMode, log: fn(&str)) -> Result<Watcher> {
        let own_path = sys::cstring(&files.records())
            .map_err(|e| crate::Error::path("watch records", &files.records(), &e))?;
        let inotify = match prefer {
            WatchMode::Inotify => match Inotify::watch_dir(files.dir(), WATCH_MASK) {
                Ok(i) => Some(i),
                Err(e) => {
                    log(&format!(
                        "cannot watch {} ({e}); checking the records file once per batch instead",
                        files.dir().display()
                    ));
                    None
                }
            },
            WatchMode::Stat => None,
        };
        let mut w = Watcher {
            view: View { own: Table::empty(files.network()), siblings: HashMap::new() },
            files,
            own_path,
            inotify,
            stamps: HashMap::new(),
            own_present: false,
            reloads: 0,
            log,
        };
        let own = w.files.network().to_owned();
        w.reload(&own);
        w.rescan_siblings();
        Ok(w)
    }

    pub fn mode(&self) -> WatchMode {
        if self.inotify.is_some() {
            WatchMode::Inotify
        } else {
            WatchMode::Stat
        }
    }

    /// The inotify descriptor to poll, in inotify mode.
    pub fn fd(&self) -> Option<RawFd> {
        self.inotify.as_ref().map(Inotify::fd)
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether the network's own records file exists.
    pub fn own_present(&self) -> bool {
        self.own_present
    }

    /// How many times a records file was (re)read: for tests and measurements.
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// Handle what inotify reports (call when its descriptor is readable).
    pub fn on_inotify(&mut self) {
        let Some(inotify) = &self.inotify else { return };
        let events = match inotify.read_events() {
            Ok(ev) => ev,
            Err(e) => {
                (self.log)(&format!("failed to read inotify events: {e}"));
                return;
            }
        };
        let mut changed: Vec<String> = Vec::new();
        let mut everything = false;
        for ev in events {
            if ev.mask
                & (libc::IN_Q_OVERFLOW
                    | libc::IN_DELETE_SELF
                    | libc::IN_MOVE_SELF
                    | libc::IN_IGNORED)
                != 0
            {
                everything = true;
                continue;
            }
            let name = std::ffi::OsStr::new(std::str::from_utf8(&ev.name).unwrap_or(""));
            if let Some(network) = network_of_records_file(name) {
                if !changed.iter().any(|n| n == network) {
                    changed.push(network.to_owned());
                }
            }
        }
        if everything {
            let own = self.files.network().to_owned();
            self.reload(&own);
            self.rescan_siblings();
        } else {
            for network in changed {
                self.reload(&network);
            }
        }
    }

    /// Before reading a query that may have arrived after this wake-up's first look at the
    /// records (a datagram after the first of a socket, a TCP read, which takes whatever has
    /// arrived): look again, so that a query sent after a change is answered from it. Mostly a
    /// read of the inotify descriptor that finds nothing (a stat of the own file in stat mode).
    pub fn catch_up(&mut self) {
        if self.inotify.is_some() {
            self.on_inotify();
        } else {
            self.check_own();
        }
    }

    /// Before a batch of queries, in stat mode: re-read the own file if it changed.
    pub fn before_batch(&mut self) {
        if self.inotify.is_none() {
            self.check_own();
        }
    }

    /// Once per tick: the own file checked in both modes (a safety net), the siblings re-listed
    /// in stat mode.
    pub fn on_tick(&mut self) {
        self.check_own();
        if self.inotify.is_none() {
            self.rescan_siblings();
        }
    }

    fn check_own(&mut self) {
        let now = sys::stamp(&self.own_path).ok().flatten();
        let own = self.files.network().to_owned();
        if now != self.stamps.get(&own).copied() || now.is_none() && self.own_present {
            self.reload(&own);
        }
    }

    /// Re-list the directory: new, changed and removed sibling files.
    fn rescan_siblings(&mut self) {
        let own = self.files.network().to_owned();
        let mut present = Vec::new();
        if let Ok(entries) = fs::read_dir(self.files.dir()) {
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let Some(network) = network_of_records_file(&file_name) else { continue };
                if network == own {
                    continue;
                }
                present.push(network.to_owned());
                let path = sys::cstring(&entry.path()).ok();
                let now = path.and_then(|p| sys::stamp(&p).ok().flatten());
                if now.is_none() || now != self.stamps.get(network).copied() {
                    self.reload(network);
                }
            }
        }
        let gone: Vec<String> =
            self.view.siblings.keys().filter(|n| !present.contains(n)).cloned().collect();
        for network in gone {
            self.view.siblings.remove(&network);
            self.stamps.remove(&network);
        }
    }

    /// Re-read one network's file and swap its table in.
    fn reload(&mut self, network: &str) {
        let own = network == self.files.network();
        let path = self.files.dir().join(format!("{network}.json"));
        let stamp = sys::cstring(&path).ok().and_then(|p| sys::stamp(&p).ok().flatten());
        self.reloads += 1;
        match read_records(&path) {
            Ok(Some(doc)) => {
                let (table, warnings) = Table::from_doc(doc);
                for w in warnings {
                    (self.log)(&format!("{}: {w}", path.display()));
                }
                if let Some(s) = stamp {
                    self.stamps.insert(network.to_owned(), s);
                }
                if own {
                    self.own_present = true;
                    self.view.own = table;
                } else {
                    self.view.siblings.insert(network.to_owned(), table);
                }
            }
            Ok(None) => {
                self.stamps.remove(network);
                if own {
                    self.own_present = false;
                    self.view.own = Table::empty(network);
                } else {
                    self.view.siblings.remove(network);
                }
            }
            Err(e) => {
                // Keep the last good table; remember the stamp so the error is reported once.
                if let Some(s) = stamp {
                    self.stamps.insert(network.to_owned(), s);
                }
                if own {
                    self.own_present = true;
                }
                (self.log)(&format!("{e}; the last good records stay in use"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::{write_records, ContainerRecord, RecordsDoc};
    use super::*;
    use crate::wire::Name;
    use std::path::PathBuf;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ns-dns-watch-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn doc(network: &str, containers: &[(&str, &str, &str)]) -> RecordsDoc {
        let mut d = RecordsDoc::new(network, None);
        for (id, name, v4) in containers {
            d.upsert(ContainerRecord {
                id: id.to_string(),
                name: name.to_string(),
                ipv4: vec![v4.parse().unwrap()],
                ..ContainerRecord::default()
            });
        }
        d
    }

    fn knows(w: &Watcher, name: &str) -> bool {
        !w.view().own.is_empty()
            && matches!(
                w.view().own.find(&Name::from_ascii(name).unwrap()),
                super::super::table::Found::Containers(_)
            )
    }

    fn quiet(_: &str) {}

    fn follows_changes(mode: WatchMode) {
        let dir = tmpdir(&format!("{mode:?}"));
        let files = NetworkFiles::new(&dir, "web").unwrap();
        write_records(&files.records(), &doc("web", &[("a1", "db", "198.51.100.2")])).unwrap();
        let mut w = Watcher::open(files.clone(), mode, quiet).unwrap();
        assert_eq!(w.mode(), mode);
        assert!(w.own_present() && knows(&w, "db"));
        // Two updates in a row, well inside one timestamp tick: the second must be seen.
        write_records(
            &files.records(),
            &doc("web", &[("a1", "db", "198.51.100.2"), ("a2", "web", "198.51.100.3")]),
        )
        .unwrap();
        write_records(&files.records(), &doc("web", &[("a2", "web", "198.51.100.3")])).unwrap();
        w.on_inotify();
        w.before_batch();
        assert!(!knows(&w, "db") && knows(&w, "web"));
        // A sibling network appears (seen at once with inotify, at the next tick with stat).
        write_records(
            &files.dir().join("back.json"),
            &doc("back", &[("a2", "web", "198.51.100.130")]),
        )
        .unwrap();
        w.on_inotify();
        w.on_tick();
        assert!(w.view().siblings.contains_key("back"));
        // A broken file keeps the last good table.
        fs::write(files.records(), "{ not json").unwrap();
        w.on_inotify();
        w.before_batch();
        assert!(knows(&w, "web"));
        fs::remove_file(files.records()).unwrap();
        fs::remove_file(files.dir().join("back.json")).unwrap();
        w.on_inotify();
        w.on_tick();
        assert!(!w.own_present());
        assert!(w.view().own.is_empty());
        assert!(w.view().siblings.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn inotify_mode_follows_every_change_of_the_records() {
        follows_changes(WatchMode::Inotify);
    }

    #[test]
    fn stat_mode_follows_every_change_of_the_records() {
        follows_changes(WatchMode::Stat);
    }
}
