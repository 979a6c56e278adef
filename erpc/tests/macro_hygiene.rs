//! The code `#[erpc::service]` generates names everything by absolute path, so it compiles
//! in modules that shadow prelude and `std` names, and in modules with no prelude at all.

/// Every name the generated code could be tempted to use unqualified, redefined as junk.
pub mod shadowed {
    #![allow(dead_code, non_camel_case_types, unused_macros)]

    /// Not `core::result::Result`.
    pub struct Result;
    /// Not `std::boxed::Box`.
    pub struct Box;
    /// Not `core::option::Option`.
    pub struct Option;
    /// Not `std::string::String`.
    pub struct String;
    /// Not `std::vec::Vec`.
    pub struct Vec;
    /// Not `std::sync::Arc`.
    pub struct Arc;
    /// Not `erpc::Error`.
    pub struct Error;
    /// Not `erpc::Client`.
    pub struct Client;
    /// Not `erpc::Request`.
    pub struct Request;
    /// Not `core::marker::Send`.
    pub trait Send {}
    /// Not `core::marker::Sync`.
    pub trait Sync {}
    /// Not `core::clone::Clone`.
    pub trait Clone {}
    /// Not `core::fmt::Debug`.
    pub trait Debug {}
    /// Not `core::future::Future`.
    pub trait Future {}
    /// Not `core::convert::Into`.
    pub trait Into {}
    /// Not `erpc::Service`.
    pub trait Service {}
    /// Not the standard library.
    pub mod std {}
    /// Not the core library.
    pub mod core {}
    /// Not the erpc crate.
    pub mod erpc {}

    macro_rules! concat {
        ($($t:tt)*) => {
            compile_error!("generated code used the shadowed `concat!`")
        };
    }
    macro_rules! module_path {
        ($($t:tt)*) => {
            compile_error!("generated code used the shadowed `module_path!`")
        };
    }
    macro_rules! format {
        ($($t:tt)*) => {
            compile_error!("generated code used the shadowed `format!`")
        };
    }
    macro_rules! stringify {
        ($($t:tt)*) => {
            compile_error!("generated code used the shadowed `stringify!`")
        };
    }

    /// A service declared where every common name means something else.
    #[::erpc::service(group = "hygiene")]
    pub trait Shadowed {
        /// Three arguments and an application error.
        async fn add(
            &self,
            a: i64,
            b: i64,
            c: i64,
        ) -> ::core::result::Result<i64, ::std::string::String>;
        /// No arguments, no result.
        #[erpc(idempotent)]
        async fn ping(&self);
        /// A default body.
        async fn twice(&self, x: u32) -> u32 {
            x * 2
        }
    }

    /// The implementation, also in the shadowed scope.
    pub struct Adder;

    impl Shadowed for Adder {
        async fn add(
            &self,
            a: i64,
            b: i64,
            c: i64,
        ) -> ::core::result::Result<i64, ::std::string::String> {
            ::core::result::Result::Ok(a + b + c)
        }

        async fn ping(&self) {}
    }
}

/// A service declared with no prelude in scope at all.
#[no_implicit_prelude]
pub mod bare {
    /// Echoes.
    #[::erpc::service(name = "bare.Echo", version = "2")]
    pub trait Echo {
        /// Returns its argument.
        async fn echo(&self, text: ::std::string::String) -> ::std::string::String;
    }
}

use erpc::Service;

#[test]
fn shadowed_names_do_not_leak_into_the_expansion() {
    let server = shadowed::ShadowedServer::new(shadowed::Adder);
    assert_eq!(
        server.key().to_string(),
        "hygiene/macro_hygiene::shadowed::Shadowed:1.0"
    );
    let names: Vec<_> = shadowed::SHADOWED_DESCRIPTOR
        .methods
        .iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["add", "ping", "twice"]);
    assert!(std::ptr::eq(
        shadowed::ShadowedClient::descriptor(),
        &shadowed::SHADOWED_DESCRIPTOR
    ));
}

#[test]
fn no_prelude_module_expands() {
    assert_eq!(bare::ECHO_DESCRIPTOR.interface, "bare.Echo");
    assert_eq!(bare::ECHO_DESCRIPTOR.default_version, "2");
    let _: fn(erpc::Client) -> bare::EchoClient = bare::EchoClient::new;
    let _: fn(erpc::BlockingClient) -> bare::EchoBlockingClient = bare::EchoBlockingClient::new;
}
