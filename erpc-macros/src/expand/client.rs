//! `HelloServiceClient` (async) and `HelloServiceBlockingClient`: one inherent method per
//! trait method, each packing its arguments into a tuple and calling by method index.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{wire_types, Names};
use crate::parse::{Method, Service};

/// Both client structs and their methods.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let async_client = async_client(service, names);
    let blocking_client = blocking_client(service, names);
    quote! {
        #async_client
        #blocking_client
    }
}

/// One builder method of the generated clients, `fn name(mut self, params..) -> Self`,
/// forwarding to the method of the same name on the wrapped handle.
struct Builder {
    name: &'static str,
    doc: &'static str,
    /// The parameters, as `(name, type)`.
    params: fn(&Names) -> Vec<(&'static str, TokenStream)>,
}

/// Every builder method of both clients. `parse` rejects service methods with these names
/// (see [`reserved_names`]), so a builder added here is reserved at the same time.
const BUILDERS: &[Builder] = &[
    Builder {
        name: "with_group",
        doc: "Calls the providers serving `group` instead of the descriptor's default group.",
        params: |_| vec![("group", into_string())],
    },
    Builder {
        name: "with_version",
        doc: "Calls the providers serving `version` instead of the descriptor's default version.",
        params: |_| vec![("version", into_string())],
    },
    Builder {
        name: "with_timeout",
        doc: "Sets the timeout of every call made through this client.",
        params: |_| vec![("timeout", quote!(::core::time::Duration))],
    },
    Builder {
        name: "with_metadata",
        doc: "Sends `key = value` as metadata with every call.",
        params: |_| vec![("key", into_string()), ("value", into_string())],
    },
    Builder {
        name: "with_balancer",
        doc: "Chooses providers with `balancer` instead of the client's.",
        params: |names| {
            let load_balancer = names.private("LoadBalancer");
            vec![("balancer", quote!(impl #load_balancer))]
        },
    },
    Builder {
        name: "with_cluster",
        doc: "Handles failures with `mode` instead of the client's cluster mode.",
        params: |names| vec![("mode", names.private("ClusterMode"))],
    },
    Builder {
        name: "with_hash_key",
        doc: "Routes every call by `key` under the consistent-hash balancer.",
        params: |_| vec![("key", quote!(::core::primitive::u64))],
    },
    Builder {
        name: "with_idempotent",
        doc: "Treats every method as idempotent: safe to retry on another provider.",
        params: |_| vec![("idempotent", quote!(::core::primitive::bool))],
    },
];

/// What the generated clients define besides [`BUILDERS`]: constructor, descriptor
/// accessor, fields, and `clone` (an inherent `clone` would hide `Clone::clone`).
const OTHER_NAMES: &[&str] = &["new", "clone", "descriptor", "inner", "runtime"];

/// Every method and field name of the generated clients: a service method of one of
/// these names would collide with it.
pub(crate) fn reserved_names() -> impl Iterator<Item = &'static str> {
    OTHER_NAMES
        .iter()
        .copied()
        .chain(BUILDERS.iter().map(|builder| builder.name))
}

fn into_string() -> TokenStream {
    quote!(impl ::core::convert::Into<::std::string::String>)
}

/// The builder methods both clients share, delegating to `self.inner`.
fn builder_methods(names: &Names) -> TokenStream {
    let vis = &names.vis;
    let methods = BUILDERS.iter().map(|builder| {
        let name = format_ident!("{}", builder.name);
        let doc = builder.doc;
        let (params, types): (Vec<_>, Vec<_>) = (builder.params)(names)
            .into_iter()
            .map(|(param, ty)| (format_ident!("{}", param), ty))
            .unzip();
        quote! {
            #[doc = #doc]
            #[must_use = "`with_*` returns the changed client; the client it is called on stays as it was"]
            #vis fn #name(mut self, #(#params: #types),*) -> Self {
                self.inner = self.inner.#name(#(#params),*);
                self
            }
        }
    });
    quote!(#(#methods)*)
}

/// The method's own docs, or a generated line when it has none (so `missing_docs` holds).
fn method_docs(method: &Method) -> TokenStream {
    if method.docs.is_empty() {
        let doc = format!("Calls `{}` on a provider.", method.wire_name);
        quote!(#[doc = #doc])
    } else {
        let docs = &method.docs;
        quote!(#(#docs)*)
    }
}

fn async_client(service: &Service, names: &Names) -> TokenStream {
    let Names {
        vis,
        service: trait_ident,
        descriptor,
        client,
        ..
    } = names;
    let service_client = names.private("ServiceClient");
    let client_ty = names.private("Client");
    let descriptor_ty = names.private("ServiceDescriptor");
    let error_ty = names.private("Error");
    let builders = builder_methods(names);
    let methods = service.methods.iter().enumerate().map(|(index, method)| {
        let docs = method_docs(method);
        let ident = &method.ident;
        let output = &method.output;
        let arg_idents: Vec<_> = method.args.iter().map(|arg| &arg.ident).collect();
        let arg_types = method.args.iter().map(|arg| &arg.ty);
        let call = match &method.hash_key {
            Some(key_arg) => {
                let hash_key = names.private("hash_key");
                quote! {
                    let __erpc_hash = #hash_key(&#key_arg);
                    self.inner.call_hashed(#index, &(#(#arg_idents,)*), __erpc_hash).await
                }
            }
            None => quote!(self.inner.call(#index, &(#(#arg_idents,)*)).await),
        };
        let bounds = wire_types::client_bounds(method, names);
        quote! {
            #docs
            #vis async fn #ident(&self, #(#arg_idents: #arg_types),*)
                -> ::core::result::Result<#output, #error_ty>
            #bounds
            {
                #call
            }
        }
    });
    let doc = format!(
        "Calls {} on remote providers: each method is one RPC returning the method's \
         result, or an `erpc::Error` when the call itself failed. Cheap to clone.",
        Names::link(trait_ident),
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            inner: #service_client,
        }

        impl #client {
            /// A client calling through `client` with the descriptor's default group and version.
            #vis fn new(client: #client_ty) -> Self {
                Self {
                    inner: #service_client::new(client, &#descriptor),
                }
            }

            #builders

            /// The interface this client calls.
            #vis fn descriptor() -> &'static #descriptor_ty {
                &#descriptor
            }

            #(#methods)*
        }
    }
}

fn blocking_client(service: &Service, names: &Names) -> TokenStream {
    let Names {
        vis,
        service: trait_ident,
        client,
        blocking_client,
        ..
    } = names;
    let blocking_ty = names.private("BlockingClient");
    let descriptor_ty = names.private("ServiceDescriptor");
    let error_ty = names.private("Error");
    let builders = builder_methods(names);
    let methods = service.methods.iter().map(|method| {
        let docs = method_docs(method);
        let ident = &method.ident;
        let output = &method.output;
        let arg_idents: Vec<_> = method.args.iter().map(|arg| &arg.ident).collect();
        let arg_types = method.args.iter().map(|arg| &arg.ty);
        let bounds = wire_types::client_bounds(method, names);
        quote! {
            #docs
            #vis fn #ident(&self, #(#arg_idents: #arg_types),*)
                -> ::core::result::Result<#output, #error_ty>
            #bounds
            {
                self.runtime.block_on(self.inner.#ident(#(#arg_idents),*))
            }
        }
    });
    let doc = format!(
        "Calls {} from code without an async runtime: each method blocks the calling \
         thread until the call completes. Same methods as {}.",
        Names::link(trait_ident),
        Names::link(client),
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #blocking_client {
            inner: #client,
            runtime: #blocking_ty,
        }

        impl #blocking_client {
            /// A client calling through `client` with the descriptor's default group and version.
            #vis fn new(client: #blocking_ty) -> Self {
                Self {
                    inner: #client::new(client.client()),
                    runtime: client,
                }
            }

            #builders

            /// The interface this client calls.
            #vis fn descriptor() -> &'static #descriptor_ty {
                #client::descriptor()
            }

            #(#methods)*
        }
    }
}
