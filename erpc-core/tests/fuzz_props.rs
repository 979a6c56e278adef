//! The cargo-fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) as proptests, so stable
//! `cargo test` exercises them too: the bodies are `erpc_core::fuzzing`'s, fed inputs
//! built from valid frames under every serializer and compression, then mutated. Also
//! replays the committed seed corpus, and holds the regression inputs found by fuzzing.
//!
//! The seed corpus in `fuzz/corpus/` is written by
//! `cargo test -p erpc-core --test fuzz_props -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};

use erpc_core::fuzzing::{self, Probe, Shape, LIMITS};
use erpc_core::protocol::{encode_frame, FrameHeader, MessageType, Status};
use erpc_core::{Compression, Metadata, Serialization};
use proptest::prelude::*;

/// A fuzz target: arbitrary bytes in, a panic when an invariant breaks.
type Target = fn(&[u8]);

/// The targets by corpus directory name.
const TARGETS: [(&str, Target); 4] = [
    ("frame_stream", fuzzing::frame_stream),
    ("request_head", fuzzing::request_head),
    ("request", fuzzing::request),
    ("response", fuzzing::response),
];

/// Index into [`LIMITS`] of the default 16 MiB limit, and of 64 KiB.
const DEFAULT_LIMIT: u8 = 7;
const LIMIT_64K: u8 = 6;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn serialization() -> impl Strategy<Value = Serialization> {
    prop::sample::select(Serialization::ALL.to_vec())
}

fn compression() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        (any::<i16>(), any::<char>()).prop_map(|(n, c)| Shape::Pair(n, c)),
        (".{0,8}", prop::collection::vec(any::<u32>(), 0..4))
            .prop_map(|(label, items)| Shape::Named { label, items }),
    ]
}

fn probe() -> impl Strategy<Value = Probe> {
    (
        (any::<u64>(), any::<i32>(), ".{0,12}"),
        prop::collection::vec(any::<u8>(), 0..16),
        prop::option::of(prop::collection::vec((".{0,4}", any::<u16>()), 0..3)),
        prop::collection::btree_map(".{0,4}", any::<i64>(), 0..3),
        shape(),
        any::<bool>(),
    )
        .prop_map(
            |((id, delta, name), bytes, tags, counts, shape, flag)| Probe {
                id,
                delta,
                name,
                bytes,
                tags,
                counts,
                shape,
                flag,
            },
        )
}

fn metadata() -> impl Strategy<Value = Metadata> {
    prop::collection::vec(("[a-z-]{1,6}", ".{0,6}"), 0..3).prop_map(|pairs| {
        let mut metadata = Metadata::new();
        for (k, v) in pairs {
            metadata.insert(k, v);
        }
        metadata
    })
}

/// Arguments a call may carry: the typed probe, a pair (the PROTOCOL.md example's
/// shape) or nested JSON-like data.
#[derive(Debug, Clone)]
enum Args {
    Probe(Probe),
    Pair(i64, i64),
    Json(serde_json::Value),
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,6}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn args() -> impl Strategy<Value = Args> {
    prop_oneof![
        probe().prop_map(Args::Probe),
        (any::<i64>(), any::<i64>()).prop_map(|(a, b)| Args::Pair(a, b)),
        json().prop_map(Args::Json),
    ]
}

fn request_bytes(id: u64, s: Serialization, c: Compression, m: &Metadata, a: &Args) -> Vec<u8> {
    let frame = match a {
        Args::Probe(p) => fuzzing::request_frame(id, s, c, m, p),
        Args::Pair(x, y) => fuzzing::request_frame(id, s, c, m, &(x, y)),
        Args::Json(v) => fuzzing::request_frame(id, s, c, m, v),
    };
    frame.expect("valid arguments encode").to_vec()
}

fn response_bytes(id: u64, s: Serialization, c: Compression, a: &Args) -> Vec<u8> {
    let frame = match a {
        Args::Probe(p) => fuzzing::response_frame(id, s, c, p),
        Args::Pair(x, y) => fuzzing::response_frame(id, s, c, &(x, y)),
        Args::Json(v) => fuzzing::response_frame(id, s, c, v),
    };
    frame.expect("valid values encode").to_vec()
}

fn request_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u64>(),
        serialization(),
        compression(),
        metadata(),
        args(),
    )
        .prop_map(|(id, s, c, m, a)| request_bytes(id, s, c, &m, &a))
}

fn response_frame() -> impl Strategy<Value = Vec<u8>> {
    let ok = (any::<u64>(), serialization(), compression(), args())
        .prop_map(|(id, s, c, a)| response_bytes(id, s, c, &a));
    let error = (any::<u64>(), any::<u8>(), ".{0,16}").prop_map(|(id, status, message)| {
        let mut header = FrameHeader::new(MessageType::Response, id);
        header.status = status.max(1);
        encode_frame(header, &[], message.as_bytes()).to_vec()
    });
    prop_oneof![3 => ok, 1 => error]
}

fn control_frame() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=6, any::<u64>()).prop_map(|(kind, id)| {
        let kind = MessageType::from_u8(kind).expect("1..=6 are types");
        encode_frame(FrameHeader::new(kind, id), &[], &[]).to_vec()
    })
}

/// A header with arbitrary fields (right magic), followed by `body` bytes.
fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 6]>(),
        any::<u16>(),
        any::<u64>(),
        0u32..200,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(b, head_len, id, body_len, body)| {
            let header = FrameHeader {
                version: b[0] % 3,
                kind: b[1] % 8,
                serializer: b[2] % 5,
                compression: b[3] % 4,
                status: b[4] % 12,
                flags: b[5],
                head_len: head_len % 64,
                request_id: id,
                body_len,
            };
            let mut out = bytes::BytesMut::new();
            header.write_to(&mut out);
            out.extend_from_slice(&body);
            out.to_vec()
        })
}

/// Overwrites a few bytes, then maybe cuts the tail: what a hostile or broken peer sends.
fn mutate(frames: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let stream = frames.concat();
    let len = stream.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        prop::option::weighted(0.2, 0..len),
    )
        .prop_map(move |(edits, cut)| {
            let mut out = stream.clone();
            for (at, byte) in edits {
                if let Some(slot) = out.get_mut(at) {
                    *slot = byte;
                }
            }
            out.truncate(cut.unwrap_or(out.len()));
            out
        })
}

fn stream_of(frame: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(frame, 0..4).prop_flat_map(mutate)
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn frame_stream(
        limit in any::<u8>(),
        split in any::<u8>(),
        stream in stream_of(prop_oneof![request_frame(), response_frame(), control_frame(), raw_frame()]),
    ) {
        fuzzing::frame_stream(&with_prefix(&[limit, split], &stream));
    }

    #[test]
    fn frame_stream_of_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::frame_stream(&data);
    }

    #[test]
    fn request_head(
        frame in request_frame(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
    ) {
        let head_len = usize::from(u16::from_be_bytes([frame[10], frame[11]]));
        let mut head = frame[24..24 + head_len].to_vec();
        for (at, byte) in edits {
            let at = at.index(head.len());
            head[at] = byte;
        }
        if let Some(cut) = cut {
            head.truncate(cut.index(head.len() + 1));
        }
        fuzzing::request_head(&head);
    }

    #[test]
    fn request_head_of_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
        fuzzing::request_head(&data);
    }

    #[test]
    fn request(config in any::<u8>(), stream in stream_of(request_frame())) {
        fuzzing::request(&with_prefix(&[config], &stream));
    }

    #[test]
    fn response(config in any::<u8>(), stream in stream_of(response_frame())) {
        fuzzing::response(&with_prefix(&[config], &stream));
    }
}

/// A frame of `kind` whose payload is `inflated` zero bytes compressed with `algorithm`.
fn bomb(kind: MessageType, serialization: Serialization, algorithm: Compression) -> Vec<u8> {
    let inflated = vec![0u8; 1 << 20];
    let mut header = FrameHeader::new(kind, 9);
    header.serializer = serialization.id();
    header.compression = algorithm.id();
    let payload = algorithm.compress(&inflated).expect("zeros compress");
    let head = if kind == MessageType::Request {
        let frame =
            fuzzing::request_frame(1, serialization, Compression::None, &Metadata::new(), &())
                .expect("unit encodes");
        let head_len = usize::from(u16::from_be_bytes([frame[10], frame[11]]));
        frame[24..24 + head_len].to_vec()
    } else {
        Vec::new()
    };
    encode_frame(header, &head, &payload).to_vec()
}

#[test]
fn bombs_never_inflate_past_any_limit() {
    for serialization in Serialization::ALL {
        for algorithm in [Compression::Gzip, Compression::Zstd] {
            for limit in 0..8u8 {
                let request = bomb(MessageType::Request, serialization, algorithm);
                fuzzing::request(&with_prefix(&[limit], &request));
                let response = bomb(MessageType::Response, serialization, algorithm);
                fuzzing::response(&with_prefix(&[limit], &response));
                fuzzing::frame_stream(&with_prefix(&[limit, 3], &[request, response].concat()));
            }
            let payload = algorithm.compress(&[0u8; 100_000]).expect("zeros compress");
            assert!(algorithm.decompress(&payload, 99_999).is_err());
        }
    }
}

/// The bytes of the PROTOCOL.md test vector headed `### {name}`.
fn vector(name: &str) -> Vec<u8> {
    let spec = include_str!("../../PROTOCOL.md");
    let start = spec.find(&format!("### {name}\n")).expect("vector present");
    let block = &spec[start..];
    let hex_start = block.find("```hex\n").expect("hex block") + "```hex\n".len();
    let hex_end = hex_start + block[hex_start..].find("```").expect("end of block");
    let hex: Vec<u8> = block[hex_start..hex_end]
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .collect();
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16))
        .collect::<Result<_, _>>()
        .expect("hex digits")
}

const VECTORS: [&str; 6] = [
    "V1 ping",
    "V2 request",
    "V3 response",
    "V4 error response",
    "V5 cancel",
    "V6 goaway",
];

/// The seed corpus: valid frames under every serializer × compression, the PROTOCOL.md
/// vectors, and gzip/zstd bombs, as `(target, file name, input)`.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut metadata = Metadata::new();
    metadata.insert("trace-id", "t1");
    let probe = Probe {
        id: 7,
        delta: -3,
        name: "ünï".into(),
        bytes: vec![0, 255],
        tags: Some(vec![("k".into(), 1)]),
        counts: [("a".to_string(), -1)].into_iter().collect(),
        shape: Shape::Named {
            label: "x".into(),
            items: vec![1, 2],
        },
        flag: true,
    };
    let args = [
        Args::Probe(probe),
        Args::Pair(1, 2),
        Args::Json(serde_json::json!({"a": [1, 2.5, null, "s"], "b": {"c": true}})),
    ];
    let mut n = 0;
    for s in Serialization::ALL {
        for c in Compression::ALL {
            let a = &args[n % args.len()];
            let name = format!("{}-{}", s.name(), c.name());
            let request = request_bytes(n as u64, s, c, &metadata, a);
            let response = response_bytes(n as u64, s, c, a);
            let config = DEFAULT_LIMIT | ((n as u8 % 3) << 3) | 0x40;
            out.push(("request", name.clone(), with_prefix(&[config], &request)));
            out.push((
                "response",
                name.clone(),
                with_prefix(&[DEFAULT_LIMIT], &response),
            ));
            let stream = [request.clone(), response].concat();
            let limit = if n % 2 == 0 { DEFAULT_LIMIT } else { 2 };
            out.push((
                "frame_stream",
                name,
                with_prefix(&[limit, n as u8], &stream),
            ));
            if c == Compression::None {
                let head_len = usize::from(u16::from_be_bytes([request[10], request[11]]));
                let head = request[24..24 + head_len].to_vec();
                out.push(("request_head", s.name().to_string(), head));
            }
            n += 1;
        }
    }
    for s in Serialization::ALL {
        for c in [Compression::Gzip, Compression::Zstd] {
            let name = format!("bomb-{}-{}", s.name(), c.name());
            let request = bomb(MessageType::Request, s, c);
            out.push(("request", name.clone(), with_prefix(&[LIMIT_64K], &request)));
            let response = bomb(MessageType::Response, s, c);
            out.push(("response", name, with_prefix(&[LIMIT_64K], &response)));
        }
    }
    let all: Vec<u8> = VECTORS.iter().flat_map(|v| vector(v)).collect();
    out.push((
        "frame_stream",
        "vectors".into(),
        with_prefix(&[DEFAULT_LIMIT, 0], &all),
    ));
    out.push((
        "frame_stream",
        "vectors-split".into(),
        with_prefix(&[DEFAULT_LIMIT, 1], &all),
    ));
    let v2 = vector("V2 request");
    let head_len = usize::from(u16::from_be_bytes([v2[10], v2[11]]));
    out.push(("request_head", "V2".into(), v2[24..24 + head_len].to_vec()));
    out.push(("request", "V2".into(), with_prefix(&[DEFAULT_LIMIT], &v2)));
    for v in ["V3 response", "V4 error response"] {
        let name = v.split(' ').next().expect("named").to_string();
        out.push(("response", name, with_prefix(&[DEFAULT_LIMIT], &vector(v))));
    }
    let mut error = FrameHeader::new(MessageType::Response, 3);
    error.status = Status::Overloaded as u8;
    let overloaded = encode_frame(error, &[], b"busy").to_vec();
    out.push((
        "response",
        "overloaded".into(),
        with_prefix(&[DEFAULT_LIMIT], &overloaded),
    ));
    out
}

/// Writes [`seeds`] into `fuzz/corpus/<target>/`; run by hand after a protocol change.
#[test]
#[ignore = "writes the committed seed corpus"]
fn write_seed_corpus() {
    for (target, name, data) in seeds() {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), data).expect("seed written");
    }
}

#[test]
fn generated_seeds_pass_their_targets() {
    for (target, name, data) in seeds() {
        let (_, run) = TARGETS.iter().find(|(t, _)| *t == target).expect("target");
        println!("{target}/{name}");
        run(&data);
    }
}

#[test]
fn committed_corpus_replays_clean() {
    for (target, run) in TARGETS {
        let dir = corpus_dir().join(target);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
        for file in files {
            println!("{}", file.display());
            run(&std::fs::read(&file).expect("seed readable"));
        }
    }
}

#[test]
fn limits_table_covers_tiny_and_default_limits() {
    assert_eq!(
        LIMITS[usize::from(DEFAULT_LIMIT)],
        erpc_core::protocol::DEFAULT_MAX_FRAME
    );
    assert_eq!(LIMITS[usize::from(LIMIT_64K)], 65536);
    assert_eq!(LIMITS[0], 0);
}
