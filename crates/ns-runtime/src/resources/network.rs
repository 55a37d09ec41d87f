//! `linux.resources.network` and `linux.resources.rdma`: the controllers of network devices
//! (net_cls and net_prio, v1 only; rdma).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::write::{absent, w, Layout, Write};
use crate::error::{Result, SetupError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    #[serde(default, rename = "classID")]
    pub class_id: Option<u32>,
    #[serde(default)]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default)]
    pub hca_handles: Option<u32>,
    #[serde(default)]
    pub hca_objects: Option<u32>,
}

/// The writes of `n`: the class id and the interfaces' priorities (v2 has neither).
pub(super) fn plan_network(layout: Layout, n: &Network, out: &mut Vec<Write>) -> Result<()> {
    let v1 = layout == Layout::V1;
    let f = |k: &str| format!("linux.resources.network.{k}");
    if let Some(id) = n.class_id {
        if !v1 {
            return Err(absent(
                layout,
                &f("classID"),
                "net_cls controller (mark the traffic with a firewall rule instead)",
            ));
        }
        out.push(w("net_cls", "net_cls.classid", id, &f("classID")));
    }
    for (i, p) in n.priorities.iter().enumerate() {
        let field = format!("{}[{i}]", f("priorities"));
        if !v1 {
            return Err(absent(layout, &field, "net_prio controller"));
        }
        if p.name.is_empty() || p.name.contains([' ', '/', '\n']) || p.name.len() > 15 {
            return Err(SetupError::config(
                format!("{field}.name"),
                format!("{:?} is not an interface name", p.name),
            ));
        }
        out.push(w("net_prio", "net_prio.ifpriomap", format!("{} {}", p.name, p.priority), &field));
    }
    Ok(())
}

/// The writes of the rdma limits, one line per device.
pub(super) fn plan_rdma(rdma: &BTreeMap<String, Rdma>, out: &mut Vec<Write>) -> Result<()> {
    for (dev, l) in rdma {
        let field = format!("linux.resources.rdma.{dev}");
        if dev.is_empty() || dev.contains([' ', '/', '\n']) {
            return Err(SetupError::config(field, "is not an rdma device name"));
        }
        let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
        out.push(w(
            "rdma",
            "rdma.max",
            format!("{dev} hca_handle={} hca_object={}", n(l.hca_handles), n(l.hca_objects)),
            &field,
        ));
    }
    Ok(())
}
