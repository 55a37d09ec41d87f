//! A network's records: the file its resolver answers from (format, atomic writes under the
//! network's lock), where the files live, the lookup table, and picking up changes.

mod file;
mod layout;
mod reverse;
mod table;
mod watch;

pub use file::{
    read_records, write_records, ContainerRecord, RecordsDoc, RecordsLock, FORMAT_VERSION,
};
pub use layout::{check_network_name, network_of_records_file, NetworkFiles};
pub use reverse::{address_of_reverse_name, reverse_name};
pub use table::{Found, Table, View};
pub use watch::{WatchMode, Watcher};
