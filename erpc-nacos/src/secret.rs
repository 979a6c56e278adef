//! A string that never shows: passwords and login tokens.
//!
//! The same type as `erpc_core::config::Secret` (the `auth` filter's token): `Debug`
//! prints `Secret(<redacted>)`, there is no `Display`, and the value is read only
//! through `Secret::expose`, so formatting a configuration or an error cannot leak it.
//!
//! ```
//! use erpc_nacos::Secret;
//!
//! let password = Secret::from("hunter2");
//! assert_eq!(format!("{password:?}"), "Secret(<redacted>)");
//! assert_eq!(password.expose(), "hunter2");
//! ```

pub use erpc_core::config::Secret;
