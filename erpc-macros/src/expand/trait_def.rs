//! The user's trait, rewritten so implementations can keep writing `async fn` while the
//! futures are guaranteed `Send` (the server runs them on a multi-threaded runtime).

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_quote_spanned, Expr, FnArg, Pat, ReturnType, Stmt, TraitItem, TraitItemFn};

use crate::attr::is_erpc_attr;
use crate::parse::Service;

/// `async fn m(&self, a: A) -> T;` becomes
/// `fn m(&self, a: A) -> impl Future<Output = T> + Send;`.
pub(crate) fn expand(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    for trait_item in &mut item.items {
        if let TraitItem::Fn(function) = trait_item {
            rewrite_method(function);
        }
    }
    quote!(#item)
}

fn rewrite_method(function: &mut TraitItemFn) {
    function.attrs.retain(|attr| !is_erpc_attr(attr));
    let sig = &mut function.sig;
    sig.asyncness = None;
    // Spans stay on the user's tokens so diagnostics about the method point at it.
    let (output, span) = match &sig.output {
        ReturnType::Default => (quote!(()), sig.paren_token.span.join()),
        ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
    };
    sig.output = parse_quote_spanned! {span=>
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
    match &mut function.default {
        Some(body) => {
            // The default body's future borrows `self`, so it is `Send` only if `Self: Sync`.
            sig.generics
                .make_where_clause()
                .predicates
                .push(parse_quote_spanned!(span=> Self: ::core::marker::Sync));
            let stmts = &body.stmts;
            let async_body: Expr = parse_quote_spanned!(span=> async move { #(#stmts)* });
            body.stmts = vec![Stmt::Expr(async_body, None)];
        }
        None => {
            // `mut a: T` is a pattern, and patterns are not allowed without a body.
            for input in &mut sig.inputs {
                if let FnArg::Typed(pat_type) = input {
                    if let Pat::Ident(pat) = &mut *pat_type.pat {
                        pat.mutability = None;
                    }
                }
            }
        }
    }
}
