//! `HelloServiceServer<T>`: wraps an implementation and dispatches requests to it by
//! method index (the server resolves names to indexes once, so no string compares here).

use proc_macro2::TokenStream;
use quote::quote;

use super::{wire_types, Names};
use crate::parse::Service;

/// The server struct, its constructors and its `erpc::Service` impl.
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let Names {
        vis,
        service: trait_ident,
        descriptor,
        server,
        ..
    } = names;
    let service_trait = names.private("Service");
    let descriptor_ty = names.private("ServiceDescriptor");
    let request_ty = names.private("Request");
    let reply_ty = names.private("Reply");
    let error_ty = names.private("Error");
    let box_future = names.private("BoxFuture");
    let string = quote!(::std::string::String);
    let arc = quote!(::std::sync::Arc);
    let wire_bounds = wire_types::server_bounds(service, names);

    let arms = service.methods.iter().enumerate().map(|(index, method)| {
        let ident = &method.ident;
        let arg_idents: Vec<_> = method.args.iter().map(|arg| &arg.ident).collect();
        let arg_types = method.args.iter().map(|arg| &arg.ty);
        // A method without arguments ignores the payload, so callers may send `()` or `[]`.
        let decode = (!arg_idents.is_empty()).then(|| {
            quote! {
                let (#(#arg_idents,)*) =
                    __erpc_request.args::<(#(#arg_types,)*)>()?;
            }
        });
        quote! {
            #index => ::std::boxed::Box::pin(async move {
                #decode
                __erpc_request.reply(
                    &<__ErpcImpl as #trait_ident>::#ident(&*__erpc_imp, #(#arg_idents),*).await,
                )
            }),
        }
    });

    // With no methods the implementation and request go unused: say so, without warnings.
    let prelude = if service.methods.is_empty() {
        quote!(::core::mem::drop(__erpc_request);)
    } else {
        quote!(let __erpc_imp = ::core::clone::Clone::clone(&self.imp);)
    };

    let doc = format!(
        "Serves an implementation of {} (register it with an erpc server).",
        Names::link(trait_ident)
    );
    let new_doc = "Serves `imp` under the descriptor's default group and version.";
    quote! {
        #[doc = #doc]
        #vis struct #server<__ErpcImpl> {
            imp: #arc<__ErpcImpl>,
            group: #string,
            version: #string,
        }

        impl<__ErpcImpl> #server<__ErpcImpl> {
            #[doc = #new_doc]
            #vis fn new(imp: __ErpcImpl) -> Self {
                Self::from_arc(#arc::new(imp))
            }

            /// Serves an implementation already shared behind an `Arc`.
            #vis fn from_arc(imp: #arc<__ErpcImpl>) -> Self {
                Self {
                    imp,
                    group: ::std::borrow::ToOwned::to_owned(#descriptor.default_group),
                    version: ::std::borrow::ToOwned::to_owned(#descriptor.default_version),
                }
            }

            /// Serves under `group` instead of the descriptor's default group.
            #[must_use = "`with_group` returns the changed server; add that one with `add_service`"]
            #vis fn with_group(mut self, group: impl ::core::convert::Into<#string>) -> Self {
                self.group = ::core::convert::Into::into(group);
                self
            }

            /// Serves under `version` instead of the descriptor's default version.
            #[must_use = "`with_version` returns the changed server; add that one with `add_service`"]
            #vis fn with_version(mut self, version: impl ::core::convert::Into<#string>) -> Self {
                self.version = ::core::convert::Into::into(version);
                self
            }
        }

        impl<__ErpcImpl> ::core::clone::Clone for #server<__ErpcImpl> {
            fn clone(&self) -> Self {
                Self {
                    imp: ::core::clone::Clone::clone(&self.imp),
                    group: ::core::clone::Clone::clone(&self.group),
                    version: ::core::clone::Clone::clone(&self.version),
                }
            }
        }

        impl<__ErpcImpl> ::core::fmt::Debug for #server<__ErpcImpl> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server))
                    .field("interface", &#descriptor.interface)
                    .field("group", &self.group)
                    .field("version", &self.version)
                    .finish_non_exhaustive()
            }
        }

        impl<__ErpcImpl> #service_trait for #server<__ErpcImpl>
        where
            __ErpcImpl: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            #(#wire_bounds,)*
        {
            fn descriptor(&self) -> &'static #descriptor_ty {
                &#descriptor
            }

            fn group(&self) -> &str {
                &self.group
            }

            fn version(&self) -> &str {
                &self.version
            }

            fn call(
                &self,
                __erpc_method: usize,
                __erpc_request: #request_ty,
            ) -> #box_future<'static, ::core::result::Result<#reply_ty, #error_ty>> {
                #prelude
                match __erpc_method {
                    #(#arms)*
                    _ => {
                        let __erpc_error = #error_ty::MethodNotFound {
                            service: ::std::string::ToString::to_string(
                                &#service_trait::key(self),
                            ),
                            method: ::std::format!("#{}", __erpc_method),
                        };
                        ::std::boxed::Box::pin(::core::future::ready(
                            ::core::result::Result::Err(__erpc_error),
                        ))
                    }
                }
            }
        }
    }
}
