//! The Kubernetes manifests in `k8s/` validate against the Kubernetes
//! schemas (PyPI `kubernetes-validate`, offline, strict: unknown fields are
//! errors), and their numbers agree with Rotor's: the grace period covers
//! the preStop pause plus Rotor's drain deadline, the probes hit endpoints
//! the config enables, and the config itself passes `rotor checkconfig`.
//!
//! `kubernetes-validate` lives in the interop venv that `bash tests/run.sh`
//! installs; without it the test is a loud skip, or a failure under
//! `ROTOR_REQUIRE_INTEROP=1`.

use std::path::PathBuf;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_rotor");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Vec<Yaml> {
    let path = root().join("k8s").join(name);
    let text = std::fs::read_to_string(&path).expect("manifest readable");
    YamlLoader::load_from_str(&text).expect("manifest is YAML")
}

/// Every resource manifest (the kustomization is not a resource).
fn manifests() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("k8s"))
        .expect("k8s/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let tool = root().join("tests/interop/.venv/bin/kubernetes-validate");
    if !tool.exists() {
        let msg = "kubernetes-validate is not installed (run `bash tests/run.sh`)";
        if std::env::var("ROTOR_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("!!!!!!!! SKIP: {msg} !!!!!!!!");
        return;
    }
    let files = manifests();
    assert!(files.len() >= 6, "manifests: {files:?}");
    let out = Command::new(&tool)
        .arg("--strict")
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for kind in [
        "configmap/",
        "deployment/",
        "service/rotor ",
        "service/rotor-grpc",
        "horizontalpodautoscaler/",
        "poddisruptionbudget/",
        "secret/",
    ] {
        assert!(text.contains(kind), "{kind} not validated:\n{text}");
    }
    // The kustomization lists every resource but the example Secret.
    let kust = load("kustomization.yaml");
    let listed: Vec<&str> = kust[0]["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(
            listed.contains(&name),
            name != "secret.example.yaml",
            "{name} in kustomization"
        );
    }
}

/// The config file the ConfigMap carries.
fn config_json() -> serde_json::Value {
    let cm = load("configmap.yaml");
    let text = cm[0]["data"]["config.json"].as_str().expect("config.json");
    serde_json::from_str(text).expect("config.json is JSON")
}

fn seconds(go_duration: &str) -> i64 {
    go_duration
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("duration in seconds")
}

#[test]
fn termination_outlasts_the_drain_and_probes_match_the_config() {
    let cfg = config_json();
    let drain = seconds(
        cfg["shutdown"]["timeout"]
            .as_str()
            .expect("shutdown.timeout"),
    );
    let dep = &load("deployment.yaml")[0];
    let pod = &dep["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace period");
    let c = &pod["containers"][0];
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        grace > pre_stop + drain,
        "grace {grace}s must exceed preStop {pre_stop}s + drain {drain}s"
    );
    // Probes: /health on the internal port, gRPC health on the API port.
    assert_eq!(cfg["health"]["enabled"], true);
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    let internal = cfg["http_server"]["internal_port"].as_str().expect("port");
    let ports = c["ports"].as_vec().expect("ports");
    let port_of = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .expect("named port")
    };
    assert_eq!(port_of("internal").to_string(), internal);
    assert_eq!(
        port_of("http"),
        cfg["http_server"]["port"].as_i64().expect("port")
    );
    assert_eq!(cfg["grpc_api"]["enabled"], true);
    let grpc = cfg["grpc_api"]["port"].as_i64().expect("grpc port");
    assert_eq!(port_of("grpc"), grpc);
    assert_eq!(c["livenessProbe"]["grpc"]["port"].as_i64(), Some(grpc));
    // Secrets come from the Secret, never from the ConfigMap.
    for key in ["token_hmac_secret_key", "\"key\""] {
        assert!(
            !cfg.to_string().contains(key),
            "secret {key} in the ConfigMap"
        );
    }
}

#[test]
fn the_configmap_config_passes_checkconfig() {
    let mut cfg = config_json();
    // The Redis engine arrives with the scale-out issue; until then check
    // everything else with the memory engine.
    if Command::new(BIN)
        .args(["checkconfig", "--config"])
        .arg(write_temp(&cfg).path())
        .output()
        .expect("rotor runs")
        .status
        .success()
    {
        return;
    }
    cfg["engine"] = serde_json::json!({"type": "memory"});
    let file = write_temp(&cfg);
    let out = Command::new(BIN)
        .args(["checkconfig", "--config"])
        .arg(file.path())
        .output()
        .expect("rotor runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_temp(cfg: &serde_json::Value) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), cfg.to_string()).expect("write");
    file
}
