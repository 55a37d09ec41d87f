//! `linux.resources.hugepageLimits`: the hugetlb controller's limit per page size (on a v1
//! host without a hugetlb hierarchy, the hybrid cgroup2's file takes it).

use serde::{Deserialize, Serialize};

use super::write::{w, Layout, Write};
use crate::error::{Result, SetupError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

/// The huge page sizes the kernel names its hugetlb files by (`2MB`, `1GB`, `64KB`).
fn check_page_size(i: usize, s: &str) -> Result<()> {
    let field = format!("linux.resources.hugepageLimits[{i}].pageSize");
    let digits = s.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(SetupError::config(
            field,
            format!("{s:?} is not a page size (such as 2MB or 1GB)"),
        ));
    }
    Ok(())
}

/// The writes of the page sizes' limits.
pub(super) fn plan_hugepages(
    layout: Layout,
    limits: &[HugepageLimit],
    out: &mut Vec<Write>,
) -> Result<()> {
    let v1 = layout == Layout::V1;
    for (i, h) in limits.iter().enumerate() {
        check_page_size(i, &h.page_size)?;
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let v2 = format!("hugetlb.{}.max", h.page_size);
        if v1 {
            let mut wr =
                w("hugetlb", format!("hugetlb.{}.limit_in_bytes", h.page_size), h.limit, &field);
            wr.hybrid = Some(v2);
            out.push(wr);
        } else {
            out.push(w("hugetlb", v2, h.limit, &field));
        }
    }
    Ok(())
}
