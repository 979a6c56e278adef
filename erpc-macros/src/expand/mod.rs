//! Code generation: one file per generated item, all driven by the validated [`Service`].
//!
//! Every path in the output is absolute (`::core::..`, `::std::..`, or the facade's
//! `__private` module) so the expansion means the same thing whatever the user's module
//! imports or shadows.

mod client;
mod descriptor;
mod server;
mod trait_def;
mod wire_types;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Ident, Path, Visibility};

use crate::parse::Service;
pub(crate) use client::reserved_names;

/// Everything `#[erpc::service]` emits for a valid trait.
pub(crate) fn expand(service: &Service) -> TokenStream {
    let names = Names::new(service);
    let trait_def = trait_def::expand(service);
    let descriptor = descriptor::expand(service, &names);
    let server = server::expand(service, &names);
    let client = client::expand(service, &names);
    let checks = wire_types::checks(service, &names);
    quote! {
        #trait_def
        #checks
        #descriptor
        #server
        #client
    }
}

/// Names and paths shared by the generated items.
pub(crate) struct Names {
    /// The facade crate, `::erpc` unless `crate = ".."` was given.
    pub(crate) krate: Path,
    /// Visibility of the trait, given to every generated item.
    pub(crate) vis: Visibility,
    /// The trait, `HelloService`.
    pub(crate) service: Ident,
    /// The trait's name without `r#`, for messages and the interface name.
    pub(crate) service_name: String,
    /// `HELLO_SERVICE_DESCRIPTOR`.
    pub(crate) descriptor: Ident,
    /// `HelloServiceServer`.
    pub(crate) server: Ident,
    /// `HelloServiceClient`.
    pub(crate) client: Ident,
    /// `HelloServiceBlockingClient`.
    pub(crate) blocking_client: Ident,
}

impl Names {
    fn new(service: &Service) -> Self {
        let ident = &service.item.ident;
        let span = ident.span();
        let service_name = ident.unraw().to_string();
        Names {
            krate: service
                .args
                .krate
                .clone()
                .unwrap_or_else(|| syn::parse_quote!(::erpc)),
            vis: service.item.vis.clone(),
            service: ident.clone(),
            descriptor: format_ident!(
                "{}_DESCRIPTOR",
                screaming_snake_case(&service_name),
                span = span
            ),
            server: format_ident!("{}Server", service_name, span = span),
            client: format_ident!("{}Client", service_name, span = span),
            blocking_client: format_ident!("{}BlockingClient", service_name, span = span),
            service_name,
        }
    }

    /// `<krate>::__private::<item>`: the facade's re-exports for generated code.
    pub(crate) fn private(&self, item: &str) -> TokenStream {
        let krate = &self.krate;
        let item = format_ident!("{}", item);
        quote!(#krate::__private::#item)
    }

    /// An intra-doc link to a generated or user item, for generated doc comments.
    pub(crate) fn link(ident: &impl ToTokens) -> String {
        format!("[`{}`]", ident.to_token_stream())
    }
}

/// `HelloService` -> `HELLO_SERVICE`, `HTTPGateway` -> `HTTP_GATEWAY`.
fn screaming_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{expand, reserved_names, screaming_snake_case};
    use crate::attr::ServiceArgs;
    use crate::errors::Errors;
    use crate::parse::Service;
    use syn::{ImplItem, Item};

    /// Every inherent method and field of the generated clients is reserved, and every
    /// reserved name is one of them: the list cannot drift from the expansion.
    #[test]
    fn reserved_names_are_exactly_the_client_items() {
        let item = syn::parse_quote! {
            pub trait Store {
                async fn get(&self, key: String) -> String;
            }
        };
        let mut errors = Errors::default();
        let taken: Vec<&str> = reserved_names().collect();
        let service = Service::parse(item, ServiceArgs::default(), &taken, &mut errors);
        assert!(errors.is_empty());
        let file: syn::File = syn::parse2(expand(&service)).expect("the expansion parses");
        let client_types = ["StoreClient", "StoreBlockingClient"];
        let mut generated: Vec<String> = vec!["clone".to_string()]; // from `#[derive(Clone)]`
        for item in &file.items {
            match item {
                Item::Struct(s) if client_types.iter().any(|t| s.ident == t) => {
                    generated.extend(
                        s.fields
                            .iter()
                            .filter_map(|f| f.ident.as_ref())
                            .map(|i| i.to_string()),
                    );
                }
                Item::Impl(i)
                    if i.trait_.is_none()
                        && client_types.iter().any(
                            |t| matches!(&*i.self_ty, syn::Type::Path(p) if p.path.is_ident(t)),
                        ) =>
                {
                    generated.extend(i.items.iter().filter_map(|item| match item {
                        ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                        _ => None,
                    }));
                }
                _ => {}
            }
        }
        generated.retain(|name| name != "get");
        generated.sort();
        generated.dedup();
        let mut reserved: Vec<String> = reserved_names().map(str::to_string).collect();
        reserved.sort();
        assert_eq!(generated, reserved);
    }

    #[test]
    fn descriptor_names() {
        assert_eq!(screaming_snake_case("HelloService"), "HELLO_SERVICE");
        assert_eq!(screaming_snake_case("HTTPGateway"), "HTTP_GATEWAY");
        assert_eq!(screaming_snake_case("Calc2Service"), "CALC2_SERVICE");
        assert_eq!(screaming_snake_case("echo"), "ECHO");
    }
}
