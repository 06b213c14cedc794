//! Helper processes for `cargo xtask bench inac`: the raw-quinn baselines and the P2 load
//! generator. Every mode uses the INAC TLS identity and transport settings
//! (`orbi_inac::quic::config`), so that a baseline differs from INAC only in the protocol work.
//!
//! ```text
//! inac_bench raw-recv  mode=same-work|discard dir=DIR      # prints {"listen","node/id"}
//! inac_bench raw-send  to=NODE@ADDR file=FILE              # one stream of the whole file
//! inac_bench echo-server                                   # prints {"listen","node/id"}
//! inac_bench echo-client to=NODE@ADDR count=N in-flight=K size=BYTES
//! inac_bench memory-server accept=S                        # prints {"listen","node/id"}
//! inac_bench p2-push   to=NODE@ADDR count=N in-flight=K size=BYTES schema=S
//! ```
//!
//! Clients print `{"elapsed_s": …, "count": …}` on success and exit 1 otherwise. With
//! `INAC_BENCH_STATS` set, the P2 load generators also print to stderr their CPU time per
//! exchange in the timed window and quinn's datagram and frame counts per exchange.

use std::{
    collections::HashMap,
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use orbi_inac::{
    Descriptor, Frame, KindRegistry, MemoryLedger, MemoryStore, Receiver, ReceiverConfig, Verdict,
    quic::{
        Client, PeerAddr, Server, TransportConfig,
        config::{client_config, endpoint, server_config},
        wire::{encode_frame, read_frame},
    },
};
use orbi_types::{KeyPair, Sha256Hasher, inac::Operation};
use tokio::{io::AsyncReadExt, sync::mpsc};

/// The listening helper's key (raw baselines).
const LISTENER_SEED: [u8; 32] = [0x51; 32];
/// The sending helper's key.
const SENDER_SEED: [u8; 32] = [0x52; 32];

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let options: HashMap<String, String> = args
        .filter_map(|arg| {
            arg.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    // Listeners run on the worker count `orbi inac serve` uses; load generators on the default.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(mode.as_str(), "raw-recv" | "echo-server" | "memory-server") {
        builder.worker_threads(orbi_inac::quic::config::server_worker_threads());
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => fail(&error.to_string()),
    };
    let result: Result<(), Error> = runtime.block_on(async move {
        match mode.as_str() {
            "raw-recv" => raw_recv(&options).await,
            "raw-send" => raw_send(&options).await,
            "echo-server" => echo_server().await,
            "memory-server" => memory_server(&options).await,
            "echo-client" => echo_client(&options).await,
            "p2-push" => p2_push(&options).await,
            _ => Err(format!("unknown mode {mode:?}").into()),
        }
    });
    if let Err(error) = result {
        fail(&error.to_string());
    }
}

fn fail(message: &str) -> ! {
    eprintln!("inac_bench: {message}");
    std::process::exit(1)
}

fn option<'a>(options: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Error> {
    options
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("missing {name}=").into())
}

fn number(options: &HashMap<String, String>, name: &str) -> Result<usize, Error> {
    Ok(option(options, name)?.parse()?)
}

fn listener() -> Result<quinn::Endpoint, Error> {
    let key = KeyPair::from_seed(&LISTENER_SEED);
    let config = TransportConfig::default();
    let endpoint = endpoint(
        "127.0.0.1:0".parse()?,
        Some(server_config(&key, &config)?),
        &config,
    )?;
    let line = serde_json::json!({
        "listen": endpoint.local_addr()?.to_string(),
        "node/id": key.node_id().as_str(),
    });
    println!("{line}");
    std::io::stdout().flush()?;
    Ok(endpoint)
}

async fn dial(to: &str) -> Result<(quinn::Endpoint, quinn::Connection), Error> {
    let peer: PeerAddr = to.parse()?;
    let config = TransportConfig::default();
    let endpoint = endpoint("127.0.0.1:0".parse()?, None, &config)?;
    let client = client_config(Some(&KeyPair::from_seed(&SENDER_SEED)), &peer.node, &config)?;
    let connection = endpoint
        .connect_with(client, peer.addr, "orbiplex-inac")?
        .await?;
    Ok((endpoint, connection))
}

fn report(elapsed: Duration, count: usize) {
    let line = serde_json::json!({"elapsed_s": elapsed.as_secs_f64(), "count": count});
    println!("{line}");
}

/// With `INAC_BENCH_STATS` set, the connection's packet and frame counts per exchange go to
/// stderr: how many datagrams and frames each contender spends on one exchange.
fn packet_stats(connection: &quinn::Connection, count: usize) {
    if std::env::var_os("INAC_BENCH_STATS").is_none() {
        return;
    }
    let stats = connection.stats();
    let per = |n: u64| n as f64 / count.max(1) as f64;
    eprintln!(
        "per exchange: udp_tx_datagrams={:.2} udp_rx_datagrams={:.2} tx_bytes={:.0} rx_bytes={:.0}",
        per(stats.udp_tx.datagrams),
        per(stats.udp_rx.datagrams),
        per(stats.udp_tx.bytes),
        per(stats.udp_rx.bytes)
    );
    eprintln!("frame_tx {:?}", stats.frame_tx);
    eprintln!("frame_rx {:?}", stats.frame_rx);
}

/// The raw P1 receiver: each stream's bytes are discarded, or hashed and written to a file
/// and fsynced (the same durable work as an INAC stream push, with the same 1 MiB buffers
/// handed to a blocking thread), then acknowledged with one byte.
async fn raw_recv(options: &HashMap<String, String>) -> Result<(), Error> {
    let same_work = option(options, "mode")? == "same-work";
    let dir = PathBuf::from(option(options, "dir")?);
    let endpoint = listener()?;
    let mut serial = 0u64;
    while let Some(incoming) = endpoint.accept().await {
        let connection = incoming.await?;
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            serial += 1;
            let path = dir.join(format!("raw-{serial}.bin"));
            let size = TransportConfig::default().body_buffer_bytes;
            if same_work {
                let (filled_tx, mut filled_rx) = mpsc::channel::<(Vec<u8>, usize)>(3);
                let (free_tx, mut free_rx) = mpsc::channel::<Vec<u8>>(3);
                for _ in 0..3 {
                    free_tx.try_send(vec![0u8; size])?;
                }
                let writer = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
                    let mut file = std::io::BufWriter::with_capacity(
                        256 * 1024,
                        std::fs::File::create(&path)?,
                    );
                    let mut hasher = Sha256Hasher::new();
                    while let Some((buffer, len)) = filled_rx.blocking_recv() {
                        hasher.update(&buffer[..len]);
                        file.write_all(&buffer[..len])?;
                        let _ = free_tx.blocking_send(buffer);
                    }
                    let file = file.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    let _ = hasher.finish();
                    Ok(path)
                });
                'stream: while let Some(mut buffer) = free_rx.recv().await {
                    let mut len = 0;
                    while len < buffer.len() {
                        match recv.read(&mut buffer[len..]).await? {
                            Some(n) => len += n,
                            None => {
                                filled_tx.send((buffer, len)).await?;
                                break 'stream;
                            }
                        }
                    }
                    filled_tx.send((buffer, len)).await?;
                }
                drop(filled_tx);
                let written = writer.await??;
                send.write_all(&[1]).await?;
                send.finish()?;
                let _ = send.stopped().await;
                // Outside the timed part, as INAC's stored copy is.
                std::fs::remove_file(written)?;
                continue;
            }
            let mut buffer = vec![0u8; size];
            while recv.read(&mut buffer).await?.is_some() {}
            send.write_all(&[1]).await?;
            send.finish()?;
            let _ = send.stopped().await;
        }
    }
    Ok(())
}

/// The raw P1 sender: the whole file on one stream, then waits for the receiver's byte.
async fn raw_send(options: &HashMap<String, String>) -> Result<(), Error> {
    let (endpoint, connection) = dial(option(options, "to")?).await?;
    let started = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await?;
    let mut file = tokio::fs::File::open(option(options, "file")?).await?;
    let mut buffer = vec![0u8; TransportConfig::default().body_buffer_bytes];
    let mut total = 0usize;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        send.write_all(&buffer[..n]).await?;
        total += n;
    }
    send.finish()?;
    let mut ack = [0u8; 1];
    recv.read_exact(&mut ack).await?;
    report(started.elapsed(), total);
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(())
}

/// The raw P2 responder: per stream, one length-prefixed request whose first four payload
/// bytes name the reply length; answers with a length-prefixed reply of that length.
async fn echo_server() -> Result<(), Error> {
    let endpoint = listener()?;
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                tokio::spawn(async move {
                    let Ok(request) = read_frame(&mut recv, Duration::from_secs(5)).await else {
                        return;
                    };
                    let reply_len = request
                        .get(..4)
                        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
                    let mut reply = Vec::with_capacity(reply_len + 4);
                    reply.extend_from_slice(&(reply_len as u32).to_be_bytes());
                    reply.resize(reply_len + 4, b'x');
                    let _ = send.write_all(&reply).await;
                    let _ = send.finish();
                });
            }
        });
    }
    Ok(())
}

/// The whole INAC server (QUIC endpoint, receiver thread, pipeline) over a
/// [`MemoryStore`] and a [`MemoryLedger`]: P2's bound when storage costs nothing (nothing is
/// durable, and memory grows with every push, so this is a measurement and never a node).
async fn memory_server(options: &HashMap<String, String>) -> Result<(), Error> {
    let key = KeyPair::from_seed(&LISTENER_SEED);
    let mut policy = ReceiverConfig::default();
    policy
        .allowed_peers
        .insert(KeyPair::from_seed(&SENDER_SEED).node_id());
    let kinds = KindRegistry::builder()
        .keep(option(options, "accept")?, None)
        .build()?;
    let receiver = Receiver::new(
        key.clone(),
        policy,
        kinds,
        MemoryStore::new(),
        MemoryLedger::new(),
    );
    let server = Server::bind(
        "127.0.0.1:0".parse()?,
        key,
        receiver,
        TransportConfig::default(),
    )?;
    let line = serde_json::json!({
        "listen": server.local_addr().to_string(),
        "node/id": server.node_id().as_str(),
    });
    println!("{line}");
    std::io::stdout().flush()?;
    // Runs until the benchmark kills it.
    std::future::pending::<()>().await;
    Ok(())
}

/// A 1 KiB-class inline push frame (unique bytes per `index`) and its `ingested` answer.
fn push_frame(size: usize, index: u64, schema: &str) -> Result<Frame, Error> {
    let mut bytes = vec![b'.'; size];
    let tag = index.to_be_bytes();
    bytes[..tag.len().min(size)].copy_from_slice(&tag[..tag.len().min(size)]);
    let descriptor = Descriptor::of_bytes(schema, "application/octet-stream", &bytes);
    Ok(Frame::push_inline(&descriptor, &bytes)
        .correlation_id(&format!("c-{index}"))
        .idempotency_key(&format!("k-{index}"))
        .build()?)
}

/// Runs `count` exchanges, `in_flight` at a time, each made by `one(index)`.
async fn drive<F, Fut>(count: usize, in_flight: usize, one: F) -> Result<Duration, Error>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu_before = process_cpu_ticks();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight.max(1) {
        let (one, next) = (one.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= count as u64 {
                    return Ok::<(), Error>(());
                }
                one(index).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    if std::env::var_os("INAC_BENCH_STATS").is_some()
        && let (Some(before), Some(after)) = (cpu_before, process_cpu_ticks())
    {
        // Clock ticks are 10 ms on Linux (`USER_HZ` 100).
        let micros = (after - before) as f64 * 10_000.0 / count.max(1) as f64;
        eprintln!("load generator cpu_us_per_exchange={micros:.1} (timed window)");
    }
    Ok(elapsed)
}

/// This process's user plus system CPU time in clock ticks (`/proc/self/stat`), if readable.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The raw P2 client: request/response pairs of the sizes of a P2 push and its answer.
async fn echo_client(options: &HashMap<String, String>) -> Result<(), Error> {
    let (count, in_flight, size) = (
        number(options, "count")?,
        number(options, "in-flight")?,
        number(options, "size")?,
    );
    let (endpoint, connection) = dial(option(options, "to")?).await?;
    let sample = push_frame(size, 0, "bench.p2.v1")?;
    let request_len = encode_frame(&sample).len() - 4;
    let reply_len = encode_frame(&Frame::answer(Some("c-0"), &Verdict::Ingested)).len() - 4;
    let mut request = Vec::with_capacity(request_len + 4);
    request.extend_from_slice(&(request_len as u32).to_be_bytes());
    request.extend_from_slice(&(reply_len as u32).to_be_bytes());
    request.resize(request_len + 4, b'.');
    let request = Arc::new(request);
    let conn = connection.clone();
    let elapsed = drive(count, in_flight, move |_| {
        let (connection, request) = (conn.clone(), request.clone());
        async move {
            let (mut send, mut recv) = connection.open_bi().await?;
            send.write_all(&request).await?;
            send.finish()?;
            let reply = read_frame(&mut recv, Duration::from_secs(5)).await?;
            if reply.len() != reply_len {
                return Err("short reply".into());
            }
            Ok(())
        }
    })
    .await?;
    report(elapsed, count);
    packet_stats(&connection, count);
    connection.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(())
}

/// P2 through INAC: unique 1 KiB-class inline pushes, every one must be `ingested`.
async fn p2_push(options: &HashMap<String, String>) -> Result<(), Error> {
    let (count, in_flight, size) = (
        number(options, "count")?,
        number(options, "in-flight")?,
        number(options, "size")?,
    );
    let schema = option(options, "schema")?.to_owned();
    let offset: u64 = option(options, "offset").unwrap_or("0").parse()?;
    let peer: PeerAddr = option(options, "to")?.parse()?;
    let client = Client::for_peer(
        &peer,
        KeyPair::from_seed(&SENDER_SEED),
        TransportConfig::default(),
    )?;
    let session = client.connect(&peer).await?;
    let stats_connection = session.clone();
    let frames: Arc<Vec<Frame>> = Arc::new(
        (0..count as u64)
            .map(|i| push_frame(size, offset + i, &schema))
            .collect::<Result<_, _>>()?,
    );
    let elapsed = drive(count, in_flight, move |index| {
        let (session, frames) = (session.clone(), frames.clone());
        async move {
            let answer = session.exchange(&frames[index as usize]).await?;
            if answer.operation() != Operation::Ingested {
                return Err(format!("push {index} answered {:?}", answer.to_value()).into());
            }
            Ok(())
        }
    })
    .await?;
    report(elapsed, count);
    packet_stats(stats_connection.connection(), count);
    client.close().await;
    Ok(())
}
