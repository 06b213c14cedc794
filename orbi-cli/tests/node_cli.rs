//! `orbi node` end to end: two `orbi node run` processes from config files on loopback,
//! driven by the client commands (`orbi pod attach|detach`, `orbi inac push`,
//! `orbi archivist submit|discover`), with a restart of the serving node in the middle.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
};

use common::{Run, Started};
use serde_json::{Value, json};

fn orbi(dir: &Path, args: &[&str]) -> Run {
    common::run(dir, args)
}

/// A node directory made by `orbi node init`.
struct NodeDir {
    dir: PathBuf,
    node_id: String,
}

impl NodeDir {
    fn init(root: &Path, name: &str) -> NodeDir {
        let dir = root.join(name);
        let run = orbi(
            root,
            &[
                "node",
                "init",
                "--dir",
                dir.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let node_id = run.json["node/id"].as_str().unwrap().to_owned();
        NodeDir { dir, node_id }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    fn key(&self) -> String {
        self.dir.join("node.key").display().to_string()
    }

    /// Replaces `from` with `to` in the config; the template must contain `from`.
    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        assert!(text.contains(from), "{from:?} not in the template");
        std::fs::write(self.config(), text.replacen(from, to, 1)).unwrap();
    }

    /// Lets `client` open pod sessions (only: it is not an INAC peer).
    fn allow_pod_sessions_from(&self, client: &NodeDir) {
        self.edit(
            "# Nodes that may open pod sessions, besides inac.allow and the known peers.\nallow = []",
            &format!(
                "# Nodes that may open pod sessions.\nallow = [\"{}\"]",
                client.node_id
            ),
        );
    }

    fn run(&self) -> Running {
        let config = self.config();
        let Started { child, banner, .. } = common::start(
            &self.dir,
            &["node", "run", "--config", config.to_str().unwrap()],
        );
        assert_eq!(banner["node/id"], self.node_id.as_str());
        let to = format!("{}@{}", self.node_id, banner["listen"].as_str().unwrap());
        Running {
            child,
            to,
            roles: banner["roles"].clone(),
        }
    }
}

struct Running {
    child: Child,
    to: String,
    roles: Value,
}

impl Running {
    /// SIGTERM; the exit code.
    fn stop(mut self) -> i32 {
        terminate(&mut self.child)
    }
}

/// Sends SIGTERM to `child` and waits for it; its exit code (-1 when a signal ended it).
fn terminate(child: &mut Child) -> i32 {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap().code().unwrap_or(-1)
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `orbi node run` for a config it must refuse: bounded, so a node that starts after all
/// fails the test instead of hanging it.
fn run_refused(root: &Path, node: &NodeDir) -> Run {
    let config = node.config();
    common::run_within(
        root,
        &["node", "run", "--config", config.to_str().unwrap()],
        &[],
        std::time::Duration::from_secs(30),
    )
}

fn advertisement_for(archivist: &str) -> Value {
    json!({
        "schema/v": 1, "advertisement/id": "archivist-advertisement:e2e-1",
        "created-at": "2026-03-22T22:22:33Z", "archivist/node-id": archivist,
        "accepted/scopes": ["private-retained", "federation-vault"],
        "accepted/artifact-types": ["transcript-bundle", "knowledge-artifact"],
        "retrieval/mode": "federation-discovery",
        "retention/default-max-duration-sec": 7776000,
        "retention/default-max-idle-ttl-sec": 2592000,
        "replication/max-copies": 3,
        "publication/timing-profiles": ["delayed-bundle", "curator-gated"],
        "settlement/required": false
    })
}

fn storage_request(requester: &str, id: &str, scope: &str) -> Value {
    json!({
        "schema/v": 1, "request/id": id, "requested-at": "2026-03-23T08:00:00Z",
        "requester/node-id": requester, "package/id": "archival-package:e2e-1",
        "publication/scope": scope, "artifact/type": "transcript-bundle",
        "publication/timing-profile": "curator-gated",
        "retention/max-duration-sec": 7776000, "retention/max-idle-ttl-sec": 2592000,
        "settlement/can-settle": true, "settlement/acceptable-rails": ["host-ledger"]
    })
}

fn write_json(path: &Path, value: &Value) -> String {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn two_nodes_attach_push_submit_detach_and_survive_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let serving = NodeDir::init(root, "serving");
    let client = NodeDir::init(root, "client");
    let other = NodeDir::init(root, "other");
    let stranger = NodeDir::init(root, "stranger");
    // The serving node: lets the client (and another node) push notes, keeps them, and is an
    // archivist. The stranger is in no list.
    serving.edit(
        "allow = []",
        &format!("allow = [\"{}\", \"{}\"]", client.node_id, other.node_id),
    );
    serving.edit("accept = []", "accept = [\"vendor.note.v1\"]");
    write_json(
        &serving.dir.join("advertisement.json"),
        &advertisement_for(&serving.node_id),
    );
    serving.edit(
        "# [archivist]",
        "[archivist]\nadvertisement = \"advertisement.json\"\n# (was [archivist])",
    );
    // The client's own node accepts notes from the serving node.
    client.edit("allow = []", &format!("allow = [\"{}\"]", serving.node_id));
    client.edit("accept = []", "accept = [\"vendor.note.v1\"]");

    let node = serving.run();
    assert_eq!(node.roles, json!(["inac", "pod", "archivist"]));
    let client_node = client.run();
    assert_eq!(client_node.roles, json!(["inac", "pod"]));
    let key = client.key();
    let pod = |command: &str, to: &str, rest: &[&str]| {
        let mut args = vec!["pod", command, "--key", &key, "--to", to];
        args.extend_from_slice(rest);
        orbi(root, &args)
    };

    // Attach over a live pod session: the bind names that session.
    let attachment = root.join("attachment.json").display().to_string();
    let attach = pod(
        "attach",
        &node.to,
        &[
            "--client",
            "client:e2e-phone",
            "--attachment-id",
            "attach:e2e-1",
            "--save",
            &attachment,
        ],
    );
    assert_eq!(attach.code, 0, "{} {}", attach.json, attach.stderr);
    assert_eq!(attach.json["outcome"], "admitted");
    assert_eq!(attach.json["state"], "attached");
    let saved: Value = serde_json::from_slice(&std::fs::read(&attachment).unwrap()).unwrap();
    assert_eq!(
        saved["participant-bind"]["session/id"],
        attach.json["session/id"]
    );

    // A node in no allow list gets no pod session at all.
    let stranger_attach = orbi(
        root,
        &[
            "pod",
            "attach",
            "--key",
            &stranger.key(),
            "--to",
            &node.to,
            "--client",
            "client:intruder",
        ],
    );
    assert_eq!(stranger_attach.code, 2, "{}", stranger_attach.json);
    assert!(
        stranger_attach.stderr.contains("not allowed"),
        "{}",
        stranger_attach.stderr
    );

    // The same attachment bytes on another session are refused with the spec's reason.
    let replayed_elsewhere = pod("detach", &node.to, &["--replay", &attachment]);
    assert_eq!(replayed_elsewhere.code, 1, "{}", replayed_elsewhere.json);
    assert_eq!(replayed_elsewhere.json["outcome"], "rejected");

    // A note pushed both ways: each node keeps what the other sends.
    let note = root.join("note.json");
    std::fs::write(&note, br#"{"note":"hello from e2e"}"#).unwrap();
    let note = note.display().to_string();
    let push = |from: &str, to: &str| {
        orbi(
            root,
            &[
                "inac",
                "push",
                "--key",
                from,
                "--to",
                to,
                "--schema",
                "vendor.note.v1",
                "--content-type",
                "application/json",
                &note,
            ],
        )
    };
    let pushed = push(&key, &node.to);
    assert_eq!(pushed.code, 0, "{} {}", pushed.json, pushed.stderr);
    assert_eq!(pushed.json["operation"], "ingested", "{}", pushed.json);
    let pushed_back = push(&serving.key(), &client_node.to);
    assert_eq!(pushed_back.code, 0, "{}", pushed_back.json);

    // The operator's store listing reads the node's INAC state under DATA/inac, and names
    // that place when given the data directory itself.
    let data = serving.dir.join("data");
    let listed = |dir: &Path| {
        orbi(
            root,
            &["inac", "store", "--data-dir", dir.to_str().unwrap(), "list"],
        )
    };
    let inac_data = data.join("inac");
    let wrong_place = listed(&data);
    assert_eq!(wrong_place.code, 2, "{}", wrong_place.stdout);
    assert!(
        wrong_place
            .stderr
            .contains(&format!("use --data-dir {}", inac_data.display())),
        "{}",
        wrong_place.stderr
    );
    let held = listed(&inac_data);
    assert_eq!(held.code, 0, "{}", held.stderr);
    assert!(held.stdout.contains("vendor.note.v1"), "{}", held.stdout);

    // Archivist: discovery, an accepted submission and a refused one with its reasons.
    let submit = |to: &str, request: &str| {
        orbi(
            root,
            &["archivist", "submit", "--key", &key, "--to", to, request],
        )
    };
    let discovered = orbi(
        root,
        &["archivist", "discover", "--key", &key, "--to", &node.to],
    );
    assert_eq!(
        discovered.code, 0,
        "{} {}",
        discovered.json, discovered.stderr
    );
    assert_eq!(
        discovered.json["advertisements"][0]["advertisement"]["advertisement/id"],
        "archivist-advertisement:e2e-1"
    );
    // Archivists are asked at once: two that never answer (sockets nobody reads) cost one
    // connection timeout (30 s) together, not one each, and the answers keep --to's order.
    let silent: Vec<std::net::UdpSocket> = (0..2)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let silent_to: Vec<String> = silent
        .iter()
        .map(|socket| format!("{}@{}", client.node_id, socket.local_addr().unwrap()))
        .collect();
    let mixed = common::run_within(
        root,
        &[
            "archivist",
            "discover",
            "--key",
            &key,
            "--to",
            &silent_to[0],
            "--to",
            &node.to,
            "--to",
            &silent_to[1],
        ],
        &[],
        std::time::Duration::from_secs(50),
    );
    assert_eq!(mixed.code, 2, "{} {}", mixed.json, mixed.stderr);
    assert_eq!(
        mixed.json["advertisements"][0]["node/id"],
        node.to.split('@').next().unwrap()
    );
    let failed: Vec<&str> = mixed.json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["error"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{}", mixed.json);
    for (error, to) in failed.iter().zip(&silent_to) {
        let addr = to.split('@').nth(1).unwrap();
        assert!(
            error.contains(&format!("connection to {addr} failed")),
            "{error}"
        );
    }
    // A node without the role answers, but publishes no advertisement: exit 1 (refused,
    // not unreachable), its answer listed.
    let without_role = common::run_within(
        root,
        &[
            "archivist",
            "discover",
            "--key",
            &serving.key(),
            "--to",
            &client_node.to,
        ],
        &[],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        without_role.code, 1,
        "{} {}",
        without_role.json, without_role.stderr
    );
    assert_eq!(without_role.json["advertisements"], json!([]));
    assert_eq!(
        without_role.json["failures"][0]["node/id"],
        client.node_id.as_str()
    );
    assert!(
        without_role.json["failures"][0]["answer"].is_object(),
        "{}",
        without_role.json
    );
    let accepted = write_json(
        &root.join("accepted.json"),
        &storage_request(&client.node_id, "storage-request:e2e-1", "private-retained"),
    );
    let submitted = submit(&node.to, &accepted);
    assert_eq!(submitted.code, 0, "{} {}", submitted.json, submitted.stderr);
    assert_eq!(submitted.json["operation"], "ingested");
    assert_eq!(
        submitted.json["decision"]["status"], "accepted",
        "{}",
        submitted.json
    );
    let refused = write_json(
        &root.join("refused.json"),
        &storage_request(&client.node_id, "storage-request:e2e-2", "public-vault"),
    );
    let denied = submit(&node.to, &refused);
    assert_eq!(denied.code, 1, "{} {}", denied.json, denied.stderr);
    assert_eq!(
        denied.json["refusal/code"], "policy-denied",
        "{}",
        denied.json
    );
    let reasons = denied.json["decision"]["reason/codes"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{}", denied.json);
    for reason in reasons {
        let message = denied.json["message"].as_str().unwrap();
        assert!(message.contains(reason.as_str().unwrap()), "{message}");
    }
    // The same accepted bytes from another node: the store already holds them, but that is
    // no acceptance for this node, and the first submitter's decision stays private.
    let copied = orbi(
        root,
        &[
            "archivist",
            "submit",
            "--key",
            &other.key(),
            "--to",
            &node.to,
            &accepted,
        ],
    );
    assert_eq!(copied.code, 1, "{}", copied.json);
    assert_eq!(copied.json["decision"], Value::Null, "{}", copied.json);
    // Another node's name in requester/node-id is not accepted from this peer.
    let impostor = write_json(
        &root.join("impostor.json"),
        &storage_request(
            &serving.node_id,
            "storage-request:e2e-3",
            "federation-vault",
        ),
    );
    let impersonated = submit(&node.to, &impostor);
    assert_eq!(impersonated.code, 1);
    assert_eq!(impersonated.json["refusal/code"], "not-authorized");

    // Detach, keeping the exact bytes sent.
    let detachment = root.join("detachment.json").display().to_string();
    let detach = pod(
        "detach",
        &node.to,
        &[
            "--client",
            "client:e2e-phone",
            "--attachment",
            "attach:e2e-1",
            "--reason",
            "user-request",
            "--save",
            &detachment,
        ],
    );
    assert_eq!(detach.code, 0, "{} {}", detach.json, detach.stderr);
    assert_eq!(detach.json["outcome"], "admitted");
    assert_eq!(detach.json["state"], "detached");

    // Restart the serving node: every state is still there.
    assert_eq!(node.stop(), 0);
    let node = serving.run();
    let replay = pod("detach", &node.to, &["--replay", &detachment]);
    assert_eq!(replay.code, 0, "{} {}", replay.json, replay.stderr);
    assert_eq!(replay.json["outcome"], "replayed");
    let again = push(&key, &node.to);
    assert_eq!(again.json["operation"], "already-present", "{}", again.json);
    let resubmitted = submit(&node.to, &accepted);
    assert_eq!(resubmitted.code, 0, "{}", resubmitted.json);
    assert_eq!(
        resubmitted.json["decision"]["decision/id"],
        submitted.json["decision"]["decision/id"]
    );

    assert_eq!(node.stop(), 0);
    assert_eq!(client_node.stop(), 0);
    let status = orbi(
        root,
        &[
            "pod",
            "status",
            "--db",
            serving.dir.join("data/pod.sqlite").to_str().unwrap(),
            "--client",
            "client:e2e-phone",
        ],
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.json.to_string().contains("detach:"),
        "{}",
        status.json
    );
}

#[test]
fn init_keeps_an_advertisement_given_in_place_and_the_demo_wants_a_fresh_directory() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init(root.path(), "n");
    let advertisement = node.dir.join("advertisement.json");
    let text = write_json(&advertisement, &advertisement_for(&node.node_id));
    let again = orbi(
        root.path(),
        &[
            "node",
            "init",
            "--dir",
            node.dir.to_str().unwrap(),
            "--advertisement",
            &text,
            "--force",
        ],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let kept: Value = serde_json::from_slice(&std::fs::read(&advertisement).unwrap()).unwrap();
    assert_eq!(kept, advertisement_for(&node.node_id));
    // --advertisement alone turns the role on.
    let config = std::fs::read_to_string(node.config()).unwrap();
    assert!(config.contains("[archivist]\n"), "{config}");
    assert!(!config.contains("# [archivist]"), "{config}");
    let demo = orbi(root.path(), &["demo", "--dir", node.dir.to_str().unwrap()]);
    assert_eq!(demo.code, 2);
    assert!(demo.stderr.contains("not empty"), "{}", demo.stderr);
}

#[test]
fn init_refuses_an_advertisement_node_run_would_refuse_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let junk = root.path().join("junk.json");
    std::fs::write(&junk, b"{}").unwrap();
    let dir = root.path().join("n");
    let run = orbi(
        root.path(),
        &[
            "node",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--advertisement",
            junk.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("is not a valid advertisement"),
        "{}",
        run.stderr
    );
    assert!(!dir.exists(), "nothing written, not even the key");

    // An advertisement naming another node is refused too, for a fresh key and a kept one.
    let elsewhere = NodeDir::init(root.path(), "elsewhere");
    let foreign = root.path().join("foreign.json");
    let foreign_text = write_json(&foreign, &advertisement_for(&elsewhere.node_id));
    let init_with_foreign = |dir: &Path| {
        orbi(
            root.path(),
            &[
                "node",
                "init",
                "--dir",
                dir.to_str().unwrap(),
                "--advertisement",
                &foreign_text,
                "--force",
            ],
        )
    };
    let fresh = init_with_foreign(&dir);
    assert_eq!(fresh.code, 2, "{}", fresh.stdout);
    assert!(
        fresh.stderr.contains(&elsewhere.node_id),
        "{}",
        fresh.stderr
    );
    assert!(!dir.exists(), "nothing written, not even the key");
    let kept = NodeDir::init(root.path(), "kept");
    let before = std::fs::read(kept.config()).unwrap();
    let again = init_with_foreign(&kept.dir);
    assert_eq!(again.code, 2, "{}", again.stdout);
    assert!(again.stderr.contains("not this node"), "{}", again.stderr);
    assert_eq!(std::fs::read(kept.config()).unwrap(), before);
    assert!(!kept.dir.join("advertisement.json").exists());
}

#[test]
fn a_bad_config_is_a_usage_error_naming_the_setting() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init(root.path(), "n");
    node.edit("durability = \"full\"", "durability = \"fast\"");
    let run = orbi(
        root.path(),
        &["node", "run", "--config", node.config().to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("inac.durability"), "{}", run.stderr);
    let again = orbi(
        root.path(),
        &["node", "init", "--dir", node.dir.to_str().unwrap()],
    );
    assert_eq!(again.code, 2, "init must not overwrite a config");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}

#[test]
fn a_start_that_fails_takes_back_the_data_directory_it_made_and_only_that() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init(root.path(), "n");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    node.edit(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let run_node = || run_refused(root.path(), &node);
    let refused = run_node();
    refused.assert_usage_error(&[&format!("127.0.0.1:{port}")]);
    let data = node.dir.join("data");
    assert!(
        !data.exists(),
        "the data directory made by the failed start"
    );
    // A data directory that was there before is the operator's: kept whole.
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("notes.txt"), b"mine").unwrap();
    let again = run_node();
    assert_eq!(again.code, 2, "{}", again.stdout);
    assert_eq!(std::fs::read(data.join("notes.txt")).unwrap(), b"mine");
    drop(taken);
}

#[test]
fn init_and_run_refuse_a_node_listing_itself_or_an_entry_twice() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init(root.path(), "n");
    let before = std::fs::read(node.config()).unwrap();
    let init = |extra: &[&str]| {
        let dir = node.dir.to_str().unwrap();
        let mut args = vec!["node", "init", "--dir", dir, "--force"];
        args.extend_from_slice(extra);
        orbi(root.path(), &args)
    };
    let itself = init(&["--allow", &node.node_id]);
    itself.assert_usage_error(&[&format!(
        "inac.allow lists this node's own id {}",
        node.node_id
    )]);
    let other = NodeDir::init(root.path(), "other");
    let twice = init(&["--allow", &other.node_id, "--allow", &other.node_id]);
    twice.assert_usage_error(&[&format!(
        "inac.allow: \"{}\" is listed twice",
        other.node_id
    )]);
    assert_eq!(
        std::fs::read(node.config()).unwrap(),
        before,
        "nothing written"
    );

    // A config edited by hand is refused by `node run` alike, before anything is made.
    node.edit(
        "# Nodes that may open pod sessions, besides inac.allow and the known peers.\nallow = []",
        &format!("allow = [\"{}\"]", node.node_id),
    );
    let run = run_refused(root.path(), &node);
    run.assert_usage_error(&["pod.allow lists this node's own id"]);
    assert!(!node.dir.join("data").exists());
}

#[test]
fn init_force_replaces_the_config_and_keeps_the_operators_advertisement() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n");
    let init = |extra: &[&str]| {
        let mut args = vec![
            "node",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--archivist",
        ];
        args.extend_from_slice(extra);
        orbi(root.path(), &args)
    };
    let first = init(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let node_id = first.json["node/id"].as_str().unwrap().to_owned();
    let advertisement = dir.join("advertisement.json");
    let mut edited = advertisement_for(&node_id);
    edited["replication/max-copies"] = json!(1);
    write_json(&advertisement, &edited);
    let edited_bytes = std::fs::read(&advertisement).unwrap();
    let forced = init(&["--force", "--listen", "127.0.0.1:7999"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(forced.json["node/id"], node_id.as_str(), "the key is kept");
    assert_eq!(std::fs::read(&advertisement).unwrap(), edited_bytes);
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    assert!(config.contains("listen = \"127.0.0.1:7999\""), "{config}");

    // A kept advertisement `node run` would refuse is refused here too, before the config
    // is replaced.
    let elsewhere = NodeDir::init(root.path(), "elsewhere");
    write_json(&advertisement, &advertisement_for(&elsewhere.node_id));
    let refused = init(&["--force"]);
    refused.assert_usage_error(&["not this node"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("node.toml")).unwrap(),
        config
    );
}

#[test]
fn a_dropped_session_degrades_then_expires_after_the_grace() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let serving = NodeDir::init(root, "serving");
    serving.edit("degraded-grace-sec = 90", "degraded-grace-sec = 1");
    let client = NodeDir::init(root, "client");
    // Pods only: the client may open pod sessions but is not an INAC peer.
    serving.allow_pod_sessions_from(&client);
    let node = serving.run();
    let attach = orbi(
        root,
        &[
            "pod",
            "attach",
            "--key",
            &client.key(),
            "--to",
            &node.to,
            "--client",
            "client:e2e-tablet",
            "--attachment-id",
            "attach:e2e-9",
        ],
    );
    assert_eq!(attach.code, 0, "{} {}", attach.json, attach.stderr);
    // The command has exited, so its session is gone: degraded, then session-expired.
    let db = serving.dir.join("data/pod.sqlite");
    let status = || {
        orbi(
            root,
            &[
                "pod",
                "status",
                "--db",
                db.to_str().unwrap(),
                "--client",
                "client:e2e-tablet",
            ],
        )
        .json
        .to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = status();
    while !seen.contains("session-expired") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        seen = status();
    }
    assert!(seen.contains("session-expired"), "{seen}");
    assert_eq!(node.stop(), 0);
}

/// `--node-key` is who dials (the serving node allows that node), `--key` who signs the
/// bind: a participant key of its own is no node the serving node knows.
#[test]
fn attach_dials_as_the_node_key_and_binds_the_participant() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let serving = NodeDir::init(root, "serving");
    let client = NodeDir::init(root, "client");
    serving.allow_pod_sessions_from(&client);
    let node = serving.run();
    let participant_key = root.join("participant.key");
    let generated = orbi(
        root,
        &[
            "keys",
            "generate",
            "--out",
            participant_key.to_str().unwrap(),
        ],
    );
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let participant = generated.json["participant/id"].as_str().unwrap();
    let saved = root.join("attachment.json");
    let attach = |extra: &[&str]| {
        let mut args = vec![
            "pod",
            "attach",
            "--key",
            participant_key.to_str().unwrap(),
            "--to",
            &node.to,
            "--client",
            "client:e2e-laptop",
            "--save",
            saved.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        common::run_within(root, &args, &[], std::time::Duration::from_secs(60))
    };
    let alone = attach(&[]);
    alone.assert_usage_error(&["not allowed"]);
    assert!(
        saved.exists(),
        "what was sent is saved before the node answers"
    );
    // The saved attempt is kept unless --force.
    attach(&["--node-key", &client.key()]).assert_usage_error(&[&format!(
        "--save {}: a file is already there (--force replaces it)",
        saved.display()
    )]);
    let attached = attach(&["--node-key", &client.key(), "--force"]);
    assert_eq!(attached.code, 0, "{} {}", attached.json, attached.stderr);
    assert_eq!(attached.json["outcome"], "admitted");
    let sent: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(sent["participant-bind"]["participant/id"], participant);
    assert_eq!(node.stop(), 0);
}

#[test]
fn a_command_failing_half_way_leaves_no_connection_behind() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let serving = NodeDir::init(root, "serving");
    // One connection per peer: a connection left open would refuse the next command.
    serving.edit(
        "max-connections-per-peer = 32",
        "max-connections-per-peer = 1",
    );
    let client = NodeDir::init(root, "client");
    serving.allow_pod_sessions_from(&client);
    let node = serving.run();
    let key = client.key();
    let attach = |extra: &[&str]| {
        let mut args = vec![
            "pod",
            "attach",
            "--key",
            &key,
            "--to",
            &node.to,
            "--client",
            "client:e2e-phone",
        ];
        args.extend_from_slice(extra);
        orbi(root, &args)
    };
    // Fails after the session is open: the artifact cannot be saved where asked.
    let unsaved = root.join("no/such/dir/attach.json");
    let failed = attach(&["--save", unsaved.to_str().unwrap()]);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let attached = attach(&[]);
    assert_eq!(attached.code, 0, "{} {}", attached.json, attached.stderr);
    assert_eq!(node.stop(), 0);
}

#[test]
fn a_running_node_logs_at_info_unless_rust_log_says_otherwise() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeDir::init(root.path(), "n");
    let config = node.config();
    let stderr_of_a_run = |rust_log: Option<&str>| {
        let log = root.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_orbi"));
        command
            .args(["node", "run", "--config", config.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut child = command.spawn().unwrap();
        // The banner is printed once the node serves.
        let mut banner = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut banner,
        )
        .unwrap();
        assert!(banner.contains("node/id"), "{banner}");
        assert_eq!(terminate(&mut child), 0);
        std::fs::read_to_string(&log).unwrap()
    };
    let by_default = stderr_of_a_run(None);
    assert!(by_default.contains(" INFO "), "{by_default}");
    assert!(by_default.contains("shutting down"), "{by_default}");
    let quiet = stderr_of_a_run(Some("warn"));
    assert!(!quiet.contains(" INFO "), "{quiet}");
}
