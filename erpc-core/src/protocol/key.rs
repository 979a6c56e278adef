//! The service key every request head carries: interface, group, version.

use std::fmt;

/// Identity of a service: interface name, group and version (Dubbo's triple).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Interface name, by default the Rust path of the trait (`crate::module::Trait`).
    pub interface: String,
    /// Group; empty by default.
    pub group: String,
    /// Version; `1.0` by default.
    pub version: String,
}

impl ServiceKey {
    /// Builds a key.
    pub fn new(
        interface: impl Into<String>,
        group: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            interface: interface.into(),
            group: group.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    /// `group/interface:version`, the group part omitted when empty (Dubbo's form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{}:{}", self.interface, self.version)
    }
}
