//! The service model: the user's trait, validated and reduced to what the expansion needs.
//!
//! Every rule below exists because the generated client and server could not honour the
//! shape otherwise: arguments cross the network (so they are owned, concrete and named),
//! calls run concurrently on one shared implementation (so `&self`), and each method
//! becomes an inherent method of the generated clients (so some names are taken).

use quote::quote;
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, GenericArgument, GenericParam, Ident, ItemTrait, Pat, PathArguments,
    ReturnType, Signature, TraitItem, TraitItemFn, Type,
};

use crate::attr::{is_erpc_attr, MethodOptions, ServiceArgs};
use crate::errors::Errors;

/// Prefix of every identifier the generated code introduces in the user's scope.
const RESERVED_PREFIX: &str = "__erpc";

/// A validated `#[erpc::service]` trait.
pub(crate) struct Service {
    /// The trait as written (minus nothing: the expansion rewrites it).
    pub(crate) item: ItemTrait,
    /// The attribute's arguments.
    pub(crate) args: ServiceArgs,
    /// The methods in declaration order; a method's index is its position here.
    pub(crate) methods: Vec<Method>,
}

/// One service method.
pub(crate) struct Method {
    /// The method's identifier, as written (possibly raw, `r#type`).
    pub(crate) ident: Ident,
    /// The name on the wire and in the descriptor (`type` for `r#type`).
    pub(crate) wire_name: String,
    /// The method's `///` doc attributes, copied onto the client methods.
    pub(crate) docs: Vec<Attribute>,
    /// The arguments after `&self`.
    pub(crate) args: Vec<Arg>,
    /// The return type, `()` when the method has none.
    pub(crate) output: Type,
    /// `#[erpc(idempotent)]`.
    pub(crate) idempotent: bool,
    /// `#[erpc(hash_key = "..")]`: the argument sticky balancers route by.
    pub(crate) hash_key: Option<Ident>,
}

/// One argument of a service method.
pub(crate) struct Arg {
    /// The argument's identifier.
    pub(crate) ident: Ident,
    /// Its name in the descriptor.
    pub(crate) wire_name: String,
    /// Its type, known to be owned and free of `impl Trait`.
    pub(crate) ty: Type,
}

impl Service {
    /// Validates `item`, recording every problem into `errors`. `taken` lists the names
    /// the generated clients define (the expansion's `reserved_names`): no method may
    /// have one of them.
    ///
    /// The returned model is only meaningful when `errors` stays empty.
    pub(crate) fn parse(
        item: ItemTrait,
        args: ServiceArgs,
        taken: &[&str],
        errors: &mut Errors,
    ) -> Self {
        check_trait_header(&item, errors);
        let mut methods: Vec<Method> = Vec::new();
        for trait_item in &item.items {
            let TraitItem::Fn(function) = trait_item else {
                errors.spanned(trait_item, unsupported_item(trait_item));
                continue;
            };
            let Some(method) = Method::parse(function, taken, errors) else {
                continue;
            };
            if methods.iter().any(|m| m.wire_name == method.wire_name) {
                errors.spanned(
                    &method.ident,
                    format!("duplicate service method `{}`", method.wire_name),
                );
            }
            methods.push(method);
        }
        Service {
            item,
            args,
            methods,
        }
    }
}

fn check_trait_header(item: &ItemTrait, errors: &mut Errors) {
    if let Some(unsafety) = &item.unsafety {
        errors.spanned(unsafety, "a service trait cannot be `unsafe`");
    }
    if let Some(auto) = &item.auto_token {
        errors.spanned(auto, "a service trait cannot be an `auto` trait");
    }
    for param in &item.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "a service trait cannot have lifetime parameters: every value it exchanges is owned"
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                "a service trait cannot be generic: the client and server are generated for one concrete interface"
            }
        };
        errors.spanned(param, message);
    }
    if let Some(where_clause) = &item.generics.where_clause {
        errors.spanned(where_clause, "a service trait cannot have a `where` clause");
    }
}

fn unsupported_item(item: &TraitItem) -> &'static str {
    match item {
        TraitItem::Const(_) => "associated constants are not supported in a service trait",
        TraitItem::Type(_) => "associated types are not supported in a service trait: argument and return types must be concrete",
        TraitItem::Macro(_) => "macro invocations are not supported in a service trait: write the methods out",
        _ => "only `async fn` methods are supported in a service trait",
    }
}

impl Method {
    fn parse(function: &TraitItemFn, taken: &[&str], errors: &mut Errors) -> Option<Method> {
        let before = errors.len();
        let sig = &function.sig;
        let options = MethodOptions::parse(&function.attrs, errors);
        for attr in &function.attrs {
            if attr.path().is_ident("cfg") {
                errors.spanned(
                    attr,
                    "`#[cfg]` is not supported on service methods: a method's index must not depend on features",
                );
            }
        }
        check_signature_header(sig, errors);
        check_method_name(&sig.ident, taken, errors);
        check_receiver(sig, errors);
        let args = parse_args(sig, errors);
        let output = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => {
                check_owned(ty, Position::Return, errors);
                (**ty).clone()
            }
        };
        let hash_key = options.hash_key.as_ref().and_then(|lit| {
            let found = args.iter().find(|arg| arg.ident.unraw() == lit.value());
            if found.is_none() {
                errors.spanned(
                    lit,
                    format!("`hash_key` names no argument of `{}`", sig.ident),
                );
            }
            found.map(|arg| arg.ident.clone())
        });
        if errors.len() != before {
            return None;
        }
        Some(Method {
            ident: sig.ident.clone(),
            wire_name: sig.ident.unraw().to_string(),
            docs: function
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("doc"))
                .cloned()
                .collect(),
            args,
            output,
            idempotent: options.idempotent,
            hash_key,
        })
    }
}

fn check_signature_header(sig: &Signature, errors: &mut Errors) {
    let fn_and_name = {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        quote!(#fn_token #ident)
    };
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "a service method cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, "a service method cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "a service method cannot be `extern`");
    }
    if sig.asyncness.is_none() {
        errors.spanned(
            &fn_and_name,
            format!(
                "a service method must be an `async fn`: write `async fn {}(&self, ..)`",
                sig.ident
            ),
        );
    }
    for param in &sig.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => {
                "a service method cannot have lifetime parameters: its arguments and result are owned"
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                "a service method cannot be generic: arguments are deserialized into concrete types"
            }
        };
        errors.spanned(param, message);
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(
            where_clause,
            "a service method cannot have a `where` clause",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a service method cannot be variadic");
    }
}

fn check_method_name(ident: &Ident, taken: &[&str], errors: &mut Errors) {
    let name = ident.unraw().to_string();
    if taken.contains(&name.as_str()) {
        errors.spanned(
            ident,
            format!("`{name}` is reserved: the generated clients define a method or field of that name; rename the method"),
        );
    } else if name.starts_with(RESERVED_PREFIX) {
        errors.spanned(
            ident,
            format!("names starting with `{RESERVED_PREFIX}` are reserved for generated code"),
        );
    }
}

fn check_receiver(sig: &Signature, errors: &mut Errors) {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        errors.spanned(
            &sig.ident,
            "a service method must take `&self` as its first parameter",
        );
        return;
    };
    let message = match (&receiver.reference, &receiver.mutability) {
        _ if receiver.colon_token.is_some() => {
            "a service method must take `&self`; typed receivers (`self: T`) are not supported"
        }
        (None, _) => {
            "a service method must take `&self`, not `self`: one implementation serves every call"
        }
        (Some(_), Some(_)) => {
            "a service method must take `&self`, not `&mut self`: calls run concurrently on a shared implementation, use interior mutability"
        }
        (Some((_, Some(_))), None) => {
            "a service method must take `&self` without a lifetime: the returned future is `'static`"
        }
        (Some((_, None)), None) => return,
    };
    errors.spanned(receiver, message);
}

fn parse_args(sig: &Signature, errors: &mut Errors) -> Vec<Arg> {
    let mut args: Vec<Arg> = Vec::new();
    for input in sig.inputs.iter().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue; // a second receiver: rustc reports it
        };
        check_owned(&pat_type.ty, Position::Argument, errors);
        let ident = match &*pat_type.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            pat => {
                errors.spanned(
                    pat,
                    "argument patterns are not supported in a service method: name the argument with a plain identifier",
                );
                continue;
            }
        };
        let wire_name = ident.unraw().to_string();
        if wire_name.starts_with(RESERVED_PREFIX) {
            errors.spanned(
                &ident,
                format!("names starting with `{RESERVED_PREFIX}` are reserved for generated code"),
            );
        }
        args.push(Arg {
            ident,
            wire_name,
            ty: (*pat_type.ty).clone(),
        });
    }
    args
}

/// Where a type appears, for the wording of errors.
#[derive(Clone, Copy)]
enum Position {
    Argument,
    Return,
}

/// Rejects types that cannot travel as owned, concrete values: references, non-`'static`
/// lifetimes, `impl Trait`, raw pointers and `Self`.
fn check_owned(ty: &Type, position: Position, errors: &mut Errors) {
    let what = match position {
        Position::Argument => "a service method argument",
        Position::Return => "a service method's return type",
    };
    match ty {
        Type::Reference(_) => errors.spanned(
            ty,
            format!("{what} cannot be a reference: values are (de)serialized, use an owned type such as `String`, `Vec<T>` or `T`"),
        ),
        Type::ImplTrait(_) => match position {
            Position::Argument => errors.spanned(
                ty,
                "`impl Trait` arguments are not supported: a service method cannot be generic",
            ),
            Position::Return => errors.spanned(
                ty,
                "`impl Trait` return types are not supported: the client needs a concrete type",
            ),
        },
        Type::Ptr(_) => errors.spanned(ty, format!("{what} cannot be a raw pointer")),
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_owned(&qself.ty, position, errors);
            }
            if path.qself.is_none() && path.path.segments.first().is_some_and(|s| s.ident == "Self") {
                errors.spanned(
                    ty,
                    format!("`Self` cannot appear in {what}: the generated client and server are other types"),
                );
            }
            for segment in &path.path.segments {
                check_generic_arguments(&segment.arguments, position, errors);
            }
        }
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_owned(elem, position, errors);
            }
        }
        Type::Array(array) => check_owned(&array.elem, position, errors),
        Type::Slice(slice) => check_owned(&slice.elem, position, errors),
        Type::Paren(paren) => check_owned(&paren.elem, position, errors),
        Type::Group(group) => check_owned(&group.elem, position, errors),
        _ => {}
    }
}

fn check_generic_arguments(arguments: &PathArguments, position: Position, errors: &mut Errors) {
    let PathArguments::AngleBracketed(arguments) = arguments else {
        return;
    };
    for argument in &arguments.args {
        match argument {
            GenericArgument::Type(ty) => check_owned(ty, position, errors),
            GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => errors.spanned(
                lifetime,
                "lifetimes other than `'static` are not supported in a service method signature: values are owned",
            ),
            _ => {}
        }
    }
}

/// The trait to emit beside the errors, so the rest of the crate still resolves its name
/// and the user sees only this macro's messages: the trait as written, minus what would
/// make rustc repeat them (`#[erpc]` attributes, macro items, `const`, patterns in
/// bodiless methods, duplicate methods).
pub(crate) fn fallback_trait(mut item: ItemTrait) -> ItemTrait {
    let mut seen: Vec<String> = Vec::new();
    item.items.retain_mut(|trait_item| match trait_item {
        TraitItem::Macro(_) => false,
        TraitItem::Fn(function) => {
            let name = function.sig.ident.unraw().to_string();
            if seen.contains(&name) {
                return false;
            }
            seen.push(name);
            function.attrs.retain(|attr| !is_erpc_attr(attr));
            function.sig.constness = None;
            if function.default.is_none() {
                for input in &mut function.sig.inputs {
                    if let FnArg::Typed(pat_type) = input {
                        if !matches!(&*pat_type.pat, Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none())
                        {
                            *pat_type.pat = syn::parse_quote!(_);
                        }
                    }
                }
            }
            true
        }
        _ => true,
    });
    item
}
