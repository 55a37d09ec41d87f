//! `linux.resources.blockIO`: weights and throttles, as blkio files (v1) or io files (v2).

use serde::{Deserialize, Serialize};

use super::write::{absent, w, Layout, Write};
use crate::error::{Result, SetupError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    /// Relative weight of the container's block I/O, 10 to 1000.
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub leaf_weight: Option<u16>,
    #[serde(default)]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default)]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default)]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleReadIOPSDevice")]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(default, rename = "throttleWriteIOPSDevice")]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

pub(super) fn plan_block_io(layout: Layout, b: &BlockIo, out: &mut Vec<Write>) -> Result<()> {
    let v1 = layout == Layout::V1;
    let f = |k: &str| format!("linux.resources.blockIO.{k}");
    let weight_range = |field: &str, v: u16| {
        if (10..=1000).contains(&v) {
            Ok(())
        } else {
            Err(SetupError::config(field, "must be from 10 to 1000"))
        }
    };
    // io.weight takes 1..10000 ("default N"); the spec's 10..1000 scale onto it as runc does.
    let v2_weight = |v: u16| 1 + (u32::from(v) - 10) * 9999 / 990;
    if let Some(weight) = b.weight {
        weight_range(&f("weight"), weight)?;
        out.push(if v1 {
            w("blkio", "blkio.weight", weight, &f("weight"))
        } else {
            w("io", "io.weight", format!("default {}", v2_weight(weight)), &f("weight"))
        });
    }
    if let Some(lw) = b.leaf_weight {
        weight_range(&f("leafWeight"), lw)?;
        if !v1 {
            return Err(absent(layout, &f("leafWeight"), "leaf weight"));
        }
        out.push(w("blkio", "blkio.leaf_weight", lw, &f("leafWeight")));
    }
    let dev = |field: &str, major: i64, minor: i64| -> Result<String> {
        if !(0..=0xfff).contains(&major) || !(0..=0xf_ffff).contains(&minor) {
            return Err(SetupError::config(field, format!("{major}:{minor} is not a device")));
        }
        Ok(format!("{major}:{minor}"))
    };
    for (i, d) in b.weight_device.iter().enumerate() {
        let field = format!("{}[{i}]", f("weightDevice"));
        let id = dev(&field, d.major, d.minor)?;
        if let Some(wt) = d.weight {
            weight_range(&format!("{field}.weight"), wt)?;
            out.push(if v1 {
                w("blkio", "blkio.weight_device", format!("{id} {wt}"), &field)
            } else {
                w("io", "io.weight", format!("{id} {}", v2_weight(wt)), &field)
            });
        }
        if let Some(lw) = d.leaf_weight {
            if !v1 {
                return Err(absent(layout, &format!("{field}.leafWeight"), "leaf weight"));
            }
            weight_range(&format!("{field}.leafWeight"), lw)?;
            out.push(w("blkio", "blkio.leaf_weight_device", format!("{id} {lw}"), &field));
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            &b.throttle_read_bps_device,
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            &b.throttle_write_bps_device,
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            &b.throttle_read_iops_device,
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            &b.throttle_write_iops_device,
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (name, list, file, key) in throttles {
        for (i, t) in list.iter().enumerate() {
            let field = format!("{}[{i}]", f(name));
            let id = dev(&field, t.major, t.minor)?;
            // 0 lifts the limit: v1 takes 0, v2 "max".
            out.push(if v1 {
                w("blkio", file, format!("{id} {}", t.rate), &field)
            } else {
                let rate = if t.rate == 0 { "max".to_string() } else { t.rate.to_string() };
                w("io", "io.max", format!("{id} {key}={rate}"), &field)
            });
        }
    }
    Ok(())
}
