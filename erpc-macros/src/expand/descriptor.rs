//! The service's `static` descriptor: interface name, defaults and method table.

use proc_macro2::TokenStream;
use quote::quote;

use super::Names;
use crate::parse::Service;

/// `pub static HELLO_SERVICE_DESCRIPTOR: ServiceDescriptor = ..;`
pub(crate) fn expand(service: &Service, names: &Names) -> TokenStream {
    let Names {
        vis,
        descriptor,
        service_name,
        ..
    } = names;
    let descriptor_ty = names.private("ServiceDescriptor");
    let method_ty = names.private("MethodDescriptor");
    let interface = match &service.args.name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(::core::module_path!(), "::", #service_name)),
    };
    let group = match &service.args.group {
        Some(group) => quote!(#group),
        None => quote!(""),
    };
    let version = match &service.args.version {
        Some(version) => quote!(#version),
        None => quote!("1.0"),
    };
    let methods = service.methods.iter().map(|method| {
        let name = &method.wire_name;
        let args = method.args.iter().map(|arg| &arg.wire_name);
        let idempotent = method.idempotent;
        quote! {
            #method_ty {
                name: #name,
                args: &[#(#args),*],
                idempotent: #idempotent,
            }
        }
    });
    let doc = format!(
        "Interface name, default group and version, and method table of {}; \
         served by {} and called through {}.",
        Names::link(&names.service),
        Names::link(&names.server),
        Names::link(&names.client),
    );
    quote! {
        #[doc = #doc]
        #vis static #descriptor: #descriptor_ty = #descriptor_ty {
            interface: #interface,
            default_group: #group,
            default_version: #version,
            methods: &[#(#methods),*],
        };
    }
}
