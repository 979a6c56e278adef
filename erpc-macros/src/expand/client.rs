//! `HelloServiceClient` (async) and `HelloServiceBlockingClient`: one inherent method per
//! trait method, each packing its arguments into a tuple and calling by method index.

use proc_macro2::TokenStream;
use quote::quote;

use super::Names;
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

/// The builder methods both clients share, delegating to `self.inner`.
fn builder_methods(names: &Names) -> TokenStream {
    let vis = &names.vis;
    let string = quote!(::std::string::String);
    let into_string = quote!(impl ::core::convert::Into<#string>);
    let load_balancer = names.private("LoadBalancer");
    let cluster_mode = names.private("ClusterMode");
    quote! {
        /// Calls the providers serving `group` instead of the descriptor's default group.
        #vis fn with_group(mut self, group: #into_string) -> Self {
            self.inner = self.inner.with_group(group);
            self
        }

        /// Calls the providers serving `version` instead of the descriptor's default version.
        #vis fn with_version(mut self, version: #into_string) -> Self {
            self.inner = self.inner.with_version(version);
            self
        }

        /// Sets the timeout of every call made through this client.
        #vis fn with_timeout(mut self, timeout: ::core::time::Duration) -> Self {
            self.inner = self.inner.with_timeout(timeout);
            self
        }

        /// Sends `key = value` as metadata with every call.
        #vis fn with_metadata(mut self, key: #into_string, value: #into_string) -> Self {
            self.inner = self.inner.with_metadata(key, value);
            self
        }

        /// Chooses providers with `balancer` instead of the client's.
        #vis fn with_balancer(mut self, balancer: impl #load_balancer) -> Self {
            self.inner = self.inner.with_balancer(balancer);
            self
        }

        /// Handles failures with `mode` instead of the client's cluster mode.
        #vis fn with_cluster(mut self, mode: #cluster_mode) -> Self {
            self.inner = self.inner.with_cluster(mode);
            self
        }

        /// Routes every call by `key` under the consistent-hash balancer.
        #vis fn with_hash_key(mut self, key: u64) -> Self {
            self.inner = self.inner.with_hash_key(key);
            self
        }

        /// Treats every method as idempotent: safe to retry on another provider.
        #vis fn with_idempotent(mut self, idempotent: bool) -> Self {
            self.inner = self.inner.with_idempotent(idempotent);
            self
        }
    }
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
        quote! {
            #docs
            #vis async fn #ident(&self, #(#arg_idents: #arg_types),*)
                -> ::core::result::Result<#output, #error_ty>
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
        quote! {
            #docs
            #vis fn #ident(&self, #(#arg_idents: #arg_types),*)
                -> ::core::result::Result<#output, #error_ty>
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
