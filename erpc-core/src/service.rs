//! What `#[erpc::service]` generates code against: service identity, descriptors and the
//! server-side dispatch trait.

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};

use crate::compress::CompressionPolicy;
use crate::protocol::codec::FrameBuilder;
use crate::protocol::{FrameHeader, MessageType, Metadata, Status};
use crate::serialize::Serialization;
use crate::Error;

pub use crate::protocol::ServiceKey;

/// One method of a service, as declared on the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// Method name (the wire name).
    pub name: &'static str,
    /// Argument names in order.
    pub args: &'static [&'static str],
    /// Marked `#[erpc(idempotent)]`: safe to retry on another provider.
    pub idempotent: bool,
}

/// A service interface: its name and methods, fixed at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// Interface name.
    pub interface: &'static str,
    /// Group given in the attribute (default `""`).
    pub default_group: &'static str,
    /// Version given in the attribute (default `"1.0"`).
    pub default_version: &'static str,
    /// Methods in declaration order; a method's index is its position here.
    pub methods: &'static [MethodDescriptor],
}

impl ServiceDescriptor {
    /// Index of the method called `name`.
    pub fn method_index(&self, name: &str) -> Option<usize> {
        self.methods.iter().position(|m| m.name == name)
    }
}

/// A decoded request handed to a [`Service`]: arguments still serialized.
#[derive(Debug)]
pub struct Request {
    pub(crate) request_id: u64,
    pub(crate) serialization: Serialization,
    pub(crate) compression: CompressionPolicy,
    pub(crate) payload: Bytes,
    pub(crate) metadata: Metadata,
    /// The call's context; its metadata is the request's when present.
    pub(crate) context: Option<crate::context::CallContext>,
}

impl Request {
    /// Decodes the argument tuple.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.serialization.decode(&self.payload)
    }

    /// Metadata sent by the caller.
    pub fn metadata(&self) -> &Metadata {
        match &self.context {
            Some(context) => context.metadata(),
            None => &self.metadata,
        }
    }

    /// The call's context (what [`crate::context::current`] gives inside the handler).
    pub fn context(&self) -> Option<&crate::context::CallContext> {
        self.context.as_ref()
    }

    /// The serializer the caller used (and the reply will use).
    pub fn serialization(&self) -> Serialization {
        self.serialization
    }

    /// Encodes `value` as the successful response to this request.
    pub fn reply<T: Serialize + ?Sized>(&self, value: &T) -> Result<Reply, Error> {
        let mut header = FrameHeader::new(MessageType::Response, self.request_id);
        header.serializer = self.serialization.id();
        header.status = Status::Ok as u8;
        let mut frame = FrameBuilder::new(header, SMALL_REPLY);
        frame.end_head();
        self.serialization.encode(value, frame.buf())?;
        self.compression.apply(&mut frame)?;
        frame.finish().map(Reply).map_err(Error::Encode)
    }
}

/// Bytes reserved for a reply's payload: most replies fit without growing the buffer
/// (a 64-byte value encodes to more than 64 bytes), larger ones grow as they are written.
const SMALL_REPLY: usize = 256;

/// An encoded response frame produced by [`Request::reply`].
#[derive(Debug, Clone)]
pub struct Reply(pub(crate) BytesMut);

/// Server-side dispatch: implemented by the generated `XxxServer<T>`.
///
/// The server resolves a request's method name to an index once, from a hash table built
/// at start, then calls [`Service::call`] with that index.
pub trait Service: Send + Sync + 'static {
    /// The interface this service implements.
    fn descriptor(&self) -> &'static ServiceDescriptor;
    /// Group this instance is served under.
    fn group(&self) -> &str;
    /// Version this instance is served under.
    fn version(&self) -> &str;
    /// Runs method number `method` (an index into the descriptor's methods).
    fn call(&self, method: usize, request: Request) -> BoxFuture<'static, Result<Reply, Error>>;

    /// The full key of this instance.
    fn key(&self) -> ServiceKey {
        ServiceKey::new(self.descriptor().interface, self.group(), self.version())
    }
}
