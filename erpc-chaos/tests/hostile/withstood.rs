//! Attacks the server already withstood when issue 8 was filed.

use std::time::Duration;

use bytes::Bytes;
use erpc::protocol::{FrameHeader, MessageType, Status, HEADER_LEN};
use erpc_chaos::hostile::{ping, Answer, Answers};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::harness::*;

// ---- attacks today's server already withstands (each repeated for HOLD) ----

/// 2,000 connections (50 rounds of 40) sending a header with a wrong magic: each is
/// closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_magic_closes_the_connection() {
    under_attack(
        "wrong magic: 2,000 conns",
        |s| s,
        move |t| async move {
            let mut garbage = vec![0u8; HEADER_LEN];
            garbage[..4].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
            let garbage = Bytes::from(garbage);
            let mut pacer = Pacer::new(50);
            let (mut total, mut open) = (0, 0);
            while pacer.next().await {
                let (left, sent) = left_open(t.addr, 40, false, || garbage.clone()).await;
                open += left;
                total += sent;
            }
            let mut findings = Findings::note(format!("{open} of {total} left open"));
            findings.expect(open == 0, || {
                format!("{open} connections with a wrong magic stayed open")
            });
            findings
        },
    )
    .await;
}

/// Opens `count` connections and sends each the bytes `next` gives (closing its write side
/// when `half_close`); returns how many the provider left open after [`SILENCE`], of how
/// many.
async fn left_open(
    addr: std::net::SocketAddr,
    count: usize,
    half_close: bool,
    mut next: impl FnMut() -> Bytes,
) -> (usize, usize) {
    let mut closing = JoinSet::new();
    for stream in connect_many(addr, count).await {
        let bytes = next();
        closing.spawn(async move {
            let (read, mut write) = stream.into_split();
            let _ = write.write_all(&bytes).await;
            if half_close {
                let _ = write.shutdown().await;
            }
            Answers::new(read).next(SILENCE).await == Answer::Closed
        });
    }
    let (mut open, mut total) = (0, 0);
    while let Some(closed) = closing.join_next().await {
        open += usize::from(!closed.expect("task"));
        total += 1;
    }
    (open, total)
}

/// 800 connections (50 rounds of 16) each declaring a 4 GiB body: each is answered
/// status 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused_unread() {
    let mut header = FrameHeader::new(MessageType::Request, 9);
    header.body_len = u32::MAX;
    let mut frame = bytes::BytesMut::new();
    header.write_to(&mut frame);
    frame.extend_from_slice(&[0u8; 1024]);
    let frame = frame.freeze();
    under_attack(
        "huge declared lengths: 800 conns x 4 GiB",
        |s| s,
        move |t| async move {
            let mut pacer = Pacer::new(50);
            let (mut total, mut unanswered) = (0, 0);
            while pacer.next().await {
                let mut refusing = JoinSet::new();
                for stream in connect_many(t.addr, 16).await {
                    let frame = frame.clone();
                    refusing.spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let _ = write.write_all(&frame).await;
                        matches!(Answers::new(read).next(SILENCE).await,
                        Answer::Frame(h) if Status::from_u8(h.status) == Status::FrameTooLarge)
                    });
                }
                while let Some(refused) = refusing.join_next().await {
                    unanswered += usize::from(!refused.expect("task"));
                    total += 1;
                }
            }
            let mut findings = Findings::note(format!("{unanswered} of {total} not refused"));
            findings.expect(unanswered == 0, || {
                format!("{unanswered} oversized frames got no status 10")
            });
            findings
        },
    )
    .await;
}

/// 2,000 connections (50 rounds of 40) each sending a random prefix of a request and
/// closing its side: the provider closes each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_are_dropped_with_their_connection() {
    let frame = work_request(3, 0);
    under_attack(
        "truncated frames: 2,000 conns",
        |s| s,
        move |t| async move {
            let mut rng = SmallRng::seed_from_u64(8);
            let mut pacer = Pacer::new(50);
            let (mut total, mut open) = (0, 0);
            while pacer.next().await {
                let (left, sent) = left_open(t.addr, 40, true, || {
                    frame.slice(..rng.gen_range(1..frame.len()))
                })
                .await;
                open += left;
                total += sent;
            }
            let mut findings = Findings::note(format!("{open} of {total} left open"));
            findings.expect(open == 0, || {
                format!("{open} half-closed connections stayed open")
            });
            findings
        },
    )
    .await;
}

/// 20 connections each sending 40 rounds of 20 frames with random bodies and a ping
/// (16,000 frames): every round's pong arrives (the connection keeps serving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bodies_are_answered_and_the_connection_serves_on() {
    under_attack(
        "garbage bodies: 16,000 frames on 20 conns",
        |s| s,
        move |t| async move {
            let mut talking = JoinSet::new();
            for conn in 0..20 {
                let stream = connect(t.addr).await;
                talking.spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(conn);
                    let (read, mut write) = stream.into_split();
                    let mut answers = Answers::new(read);
                    let mut pacer = Pacer::new(40);
                    let (mut frames, mut ok) = (0, 0);
                    while pacer.next().await {
                        write
                            .write_all(&garbage_round(&mut rng, 20))
                            .await
                            .expect("writing garbage");
                        frames += 20;
                        loop {
                            match answers.next(SILENCE).await {
                                Answer::Frame(h) if h.message_type() == Some(MessageType::Pong) => {
                                    break
                                }
                                Answer::Frame(h) => ok += u32::from(h.status == 0),
                                Answer::Closed | Answer::TimedOut => return (false, frames, ok),
                            }
                        }
                    }
                    (true, frames, ok)
                });
            }
            let (mut lost, mut frames, mut ok) = (0, 0, 0);
            while let Some(result) = talking.join_next().await {
                let (served, sent, oks) = result.expect("task");
                lost += usize::from(!served);
                frames += sent;
                ok += oks;
            }
            let mut findings = Findings::note(format!(
                "{frames} frames; {lost} of 20 conns lost; {ok} answered ok"
            ));
            findings.expect(lost == 0, || {
                format!("{lost} connections stopped serving after garbage")
            });
            findings
        },
    )
    .await;
}

/// `frames` request frames with random serializer, compression, head length and body, then
/// a ping.
fn garbage_round(rng: &mut SmallRng, frames: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for id in 1..=frames {
        let body: Vec<u8> = (0..rng.gen_range(0..512)).map(|_| rng.gen()).collect();
        let mut header = FrameHeader::new(MessageType::Request, id);
        header.serializer = rng.gen_range(0..=3);
        header.compression = rng.gen_range(0..=2);
        header.head_len = rng.gen_range(0..=body.len()) as u16;
        header.body_len = body.len() as u32;
        let mut frame = bytes::BytesMut::new();
        header.write_to(&mut frame);
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&body);
    }
    bytes.extend_from_slice(&ping(u64::MAX));
    bytes
}

/// 20 connections sending 20,000 valid frames with 1–3 random bytes changed (40 rounds
/// of 25 each; a connection closed by the provider is replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_frames_break_nothing() {
    under_attack(
        "fuzzed frames: 20,000 on 20 conns",
        |s| s,
        move |t| async move {
            let valid = [work_request(5, 0), ping(6), blob_requests(1, 10).remove(0)];
            let mut fuzzing = JoinSet::new();
            for conn in 0..20u64 {
                let valid = valid.clone();
                fuzzing.spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(conn);
                    let mut stream = None;
                    let (mut connections, mut frames) = (0, 0);
                    let mut pacer = Pacer::new(40);
                    while pacer.next().await {
                        for _ in 0..25 {
                            let mut frame = valid[rng.gen_range(0..valid.len())].to_vec();
                            for _ in 0..rng.gen_range(1..=3) {
                                let at = rng.gen_range(0..frame.len());
                                frame[at] = rng.gen();
                            }
                            if stream.is_none() {
                                let (read, write) = connect(t.addr).await.into_split();
                                connections += 1;
                                tokio::spawn(drain_answers(read));
                                stream = Some(write);
                            }
                            if let Some(write) = stream.as_mut() {
                                if write.write_all(&frame).await.is_err() {
                                    stream = None;
                                }
                            }
                            frames += 1;
                        }
                    }
                    (connections, frames)
                });
            }
            let (mut connections, mut frames) = (0, 0);
            while let Some(counts) = fuzzing.join_next().await {
                let (c, f) = counts.expect("fuzz task");
                connections += c;
                frames += f;
            }
            Findings::note(format!("{frames} frames on {connections} connections"))
        },
    )
    .await;
}

/// 2,000 connections each sending a header one byte per second (opened and written in
/// slices of 100 every 50 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_sockets_starve_nobody() {
    under_attack(
        "slowloris: 2,000 sockets, 1 byte/s",
        |s| s,
        move |t| async move {
            // Sockets open and trickle in slices of 100 every 50 ms, as slowloris does:
            // each gets one byte a second, never all 2,000 in the same instant.
            let mut streams = Vec::with_capacity(2_000);
            for _ in 0..20 {
                streams.extend(connect_many(t.addr, 100).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let frame = ping(1);
            let began = Instant::now();
            let mut at = 0;
            while began.elapsed() < HOLD && at < HEADER_LEN {
                for slice in streams.chunks_mut(100) {
                    for stream in slice {
                        let _ = stream.write_all(&frame[at..=at]).await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                at += 1;
            }
            Findings::note(format!("{at} bytes of a header each"))
        },
    )
    .await;
}

/// 10,000 tiny requests on one connection that never reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_unread_small_answers_starve_nobody() {
    let frames: Vec<Bytes> = (1..=10_000).map(|id| work_request(id, 0)).collect();
    under_attack(
        "pipelined unread: 10,000 tiny requests",
        |s| s,
        move |t| async move {
            let sent = send_and_never_read(connect(t.addr).await, frames).await;
            Findings::note(format!("{sent} requests sent"))
        },
    )
    .await;
}

/// 50 tasks opening and closing 5,000 connections (100 rounds of one each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_close_cycles_leave_nothing_behind() {
    under_attack(
        "connect/close: 5,000 cycles from 50 tasks",
        |s| s,
        move |t| async move {
            let mut cycling = JoinSet::new();
            for _ in 0..50 {
                cycling.spawn(async move {
                    let mut pacer = Pacer::new(100);
                    let mut cycles = 0;
                    while pacer.next().await {
                        drop(connect(t.addr).await);
                        cycles += 1;
                    }
                    cycles
                });
            }
            let mut cycles = 0;
            while let Some(done) = cycling.join_next().await {
                cycles += done.expect("connect task");
            }
            Findings::note(format!("{cycles} cycles"))
        },
    )
    .await;
}
