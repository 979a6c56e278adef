//! `#[erpc::service]`: turns a plain async trait into an erpc service.
//!
//! Use it through the facade crate as `#[erpc::service]`; this crate is an implementation
//! detail and its generated code only names items re-exported by `erpc`.
//!
//! The macro parses the trait with `syn`, validates every method (collecting all problems
//! so one build reports them together, each on the offending tokens) and then emits, with
//! `quote`, the rewritten trait, a descriptor, a server wrapper and two clients.

#![forbid(unsafe_code)]

mod attr;
mod errors;
mod expand;
mod parse;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::Item;

use crate::attr::ServiceArgs;
use crate::errors::Errors;
use crate::parse::{fallback_trait, Service};

/// Declares an erpc service from a trait of `async fn` methods.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Hello {
///     pub name: String,
/// }
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// pub enum CalcError {
///     Overflow,
/// }
///
/// #[erpc::service(group = "test1", version = "1.0")]
/// pub trait HelloService {
///     /// Greets.
///     async fn hello(&self, hello: Hello) -> String;
///     /// Application errors travel as values inside `Ok(..)`.
///     async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError>;
///     /// Safe to retry on another provider.
///     #[erpc(idempotent)]
///     async fn ping(&self);
/// }
///
/// // Providers implement the trait with plain `async fn`...
/// struct Greeter;
///
/// impl HelloService for Greeter {
///     async fn hello(&self, hello: Hello) -> String {
///         format!("hello {}", hello.name)
///     }
///
///     async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError> {
///         a.checked_add(b).ok_or(CalcError::Overflow)
///     }
///
///     async fn ping(&self) {}
/// }
///
/// // ...and host it with `erpc::Server::builder().add_service(server)`.
/// let server = HelloServiceServer::new(Greeter).with_group("blue");
/// # let _ = server;
///
/// // Consumers call through `HelloServiceClient::new(client)` (async) or
/// // `HelloServiceBlockingClient::new(blocking_client)`.
/// let methods = HelloServiceClient::descriptor().methods;
/// assert_eq!(methods[1].args, ["a", "b"]);
/// assert!(methods[2].idempotent);
/// ```
///
/// # Attribute keys (all optional)
///
/// | key | meaning | default |
/// |---|---|---|
/// | `name = ".."` | interface name on the wire and in the registry | `module_path!()::Trait` |
/// | `group = ".."` | default group | `""` |
/// | `version = ".."` | default version | `"1.0"` |
/// | `crate = ".."` | path of the `erpc` crate, when renamed | `::erpc` |
///
/// A method marked `#[erpc(idempotent)]` may be retried on another provider after a
/// failure that could have reached the first one.
///
/// # Generated items (for a trait `HelloService`, with the trait's visibility)
///
/// - The trait itself, each `async fn m(&self, ..) -> T` rewritten as
///   `fn m(&self, ..) -> impl Future<Output = T> + Send`; implement it with `async fn`.
/// - `HELLO_SERVICE_DESCRIPTOR: erpc::ServiceDescriptor`, the interface, defaults and
///   method table (a method's index is its declaration order).
/// - `HelloServiceServer<T>`: `new(imp)`, `from_arc(arc)`, `with_group`, `with_version`,
///   implementing `erpc::Service` for any `T: HelloService + Send + Sync + 'static`.
/// - `HelloServiceClient`: `new(erpc::Client)`, the builders `with_group`,
///   `with_version`, `with_timeout`, `with_metadata`, `with_balancer`, `with_cluster`,
///   `with_hash_key`, `with_idempotent` (each returns the changed client), `descriptor()`,
///   and per method
///   `async fn m(&self, ..) -> Result<T, erpc::Error>`.
/// - `HelloServiceBlockingClient`: the same over `erpc::BlockingClient`, with blocking
///   methods.
///
/// Every argument and return type must implement `serde::Serialize` and
/// `serde::Deserialize` (use `erpc::ByteBuf` for bytes); a type that does not gets one
/// error per missing trait, on the type.
///
/// # Rejected shapes
///
/// Generic or lifetime-parameterised traits and methods, `where` clauses, associated
/// types, constants and macros, non-`async`, `const`, `unsafe` or `extern` methods,
/// receivers other than `&self`, argument patterns, reference or `impl Trait` argument and
/// return types, `#[cfg]` on methods, unknown attribute keys or options, and method names
/// the generated clients use (`new`, `clone`, `descriptor`, `inner`, `runtime`, the
/// builders `with_group`, `with_version`, `with_timeout`, `with_metadata`,
/// `with_balancer`, `with_cluster`, `with_hash_key`, `with_idempotent`, and `__erpc*`).
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service_impl(attr.into(), item.into()).into()
}

fn service_impl(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let args = ServiceArgs::parse(attr, &mut errors);
    let item_trait = match syn::parse2::<Item>(item) {
        Ok(Item::Trait(item_trait)) => item_trait,
        Ok(other) => {
            errors.push(syn::Error::new(
                Span::call_site(),
                "`#[erpc::service]` can only be applied to a trait",
            ));
            let errors = errors.into_compile_errors();
            return quote!(#errors #other);
        }
        Err(error) => return error.into_compile_error(),
    };
    let taken: Vec<&str> = expand::reserved_names().collect();
    let service = Service::parse(item_trait, args, &taken, &mut errors);
    if errors.is_empty() {
        return expand::expand(&service);
    }
    let errors = errors.into_compile_errors();
    let item_trait = fallback_trait(service.item);
    quote!(#errors #item_trait)
}
