//! Building the Java programs of the Java interop tests from Debian's
//! packages: finds `javac`, `protoc`, the grpc-java plugin and the jars,
//! generates the stubs from `proto/`, compiles once per input hash into
//! `tests/interop/java/build/<hash>/`, and says SKIP (or fails under
//! `ROTOR_REQUIRE_INTEROP=1`) naming what is missing.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::runner::interop_dir;

/// Where Debian installs Java libraries.
const JAVA_LIBS: &str = "/usr/share/java";

/// The jars the programs run with (`/usr/share/java/<name>.jar`), each with
/// the Debian package that ships it.
const RUNTIME_JARS: &[(&str, &str)] = &[
    ("grpc-api", "libgrpc-java"),
    ("grpc-context", "libgrpc-java"),
    ("grpc-core", "libgrpc-java"),
    ("grpc-netty", "libgrpc-java"),
    ("grpc-protobuf", "libgrpc-java"),
    ("grpc-protobuf-lite", "libgrpc-java"),
    ("grpc-stub", "libgrpc-java"),
    ("protobuf", "libprotobuf-java"),
    ("guava", "libguava-java"),
    ("perfmark-api", "libperfmark-java"),
    ("netty-buffer", "libnetty-java"),
    ("netty-codec", "libnetty-java"),
    ("netty-codec-http", "libnetty-java"),
    ("netty-codec-http2", "libnetty-java"),
    ("netty-codec-socks", "libnetty-java"),
    ("netty-common", "libnetty-java"),
    ("netty-handler", "libnetty-java"),
    ("netty-handler-proxy", "libnetty-java"),
    ("netty-resolver", "libnetty-java"),
    ("netty-transport", "libnetty-java"),
    // TLS: Debian's netty has no JDK ALPN (the negotiator classes are
    // stripped), so grpc-java speaks TLS through OpenSSL (netty-tcnative).
    ("netty-tcnative", "libnetty-tcnative-java"),
];

/// Jars only `javac` needs: `javax.annotation.Generated`, which the
/// grpc-java 1.41 plugin puts on its stubs and Java 11+ no longer has.
const COMPILE_JARS: &[(&str, &str)] = &[(
    "geronimo-annotation-1.3-spec",
    "libgeronimo-annotation-1.3-spec-java",
)];

/// The JNI library of netty-tcnative (Debian package
/// `libnetty-tcnative-jni`), under `/usr/lib/<multiarch>/jni/`. Netty loads it
/// only under the name `libnetty_tcnative.so` and the library refuses to run
/// from a path without that name, so each build has a copy so named in its
/// `native/` (the `java.library.path` of the programs).
const TCNATIVE_JNI: &str = "libnetty-tcnative.so";

/// The protos the classes are generated from (relative to `proto/`).
pub(crate) const PROTOS: &[&str] = &["api.proto", "proxy.proto"];

/// How long `protoc` or `javac` may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The compiled programs.
#[derive(Debug)]
pub(crate) struct Java {
    /// `java` runs them with this class path.
    classpath: String,
    /// ... and this `java.library.path` (netty-tcnative).
    library_path: PathBuf,
}

impl Java {
    /// `java -cp <classpath> <main> <args>`.
    pub(crate) fn command(&self, main: &str) -> Command {
        let mut c = Command::new("java");
        c.arg(format!(
            "-Djava.library.path={}",
            self.library_path.display()
        ))
        .arg("-cp")
        .arg(&self.classpath)
        .arg(main);
        c
    }
}

/// The outcome of setting the toolchain up (once per process).
#[derive(Debug)]
enum Setup {
    Ready(Java),
    /// Something to install is missing: SKIP, or FAIL under
    /// `ROTOR_REQUIRE_INTEROP=1`.
    Missing(String),
    /// Everything is there but the build failed: always a failure.
    Failed(String),
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn java_dir() -> PathBuf {
    interop_dir().join("java")
}

/// The hand-written Java sources, sorted.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "java") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&java_dir().join("src"), &mut out);
    out.sort();
    out
}

/// Whether `cmd --version`-like `args` run and succeed; its output.
fn tool_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    })
}

/// `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The grpc-java protoc plugin: `ROTOR_GRPC_JAVA_PLUGIN` or
/// `grpc_java_plugin` on `PATH` (Debian: `/usr/bin/grpc_java_plugin`).
fn grpc_java_plugin() -> Option<PathBuf> {
    match std::env::var_os("ROTOR_GRPC_JAVA_PLUGIN") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => on_path("grpc_java_plugin"),
    }
}

/// The netty-tcnative JNI library Debian installed.
fn tcnative_jni() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("jni"))
        .collect();
    dirs.sort();
    dirs.push(PathBuf::from("/usr/lib/jni"));
    dirs.into_iter()
        .map(|d| d.join(TCNATIVE_JNI))
        .find(|p| p.is_file())
}

/// `/usr/share/java/<name>.jar` for each jar, or what is missing.
fn jars(list: &[(&str, &str)]) -> Result<Vec<PathBuf>, String> {
    list.iter()
        .map(|(name, package)| {
            let p = Path::new(JAVA_LIBS).join(format!("{name}.jar"));
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{} is missing (Debian package {package})",
                    p.display()
                ))
            }
        })
        .collect()
}

fn join_classpath(parts: &[PathBuf]) -> String {
    std::env::join_paths(parts)
        .expect("class path")
        .to_string_lossy()
        .into_owned()
}

/// Runs `cmd` to completion within `timeout`; its exit success, stdout and
/// stderr, or why it could not run.
pub(crate) fn run_bounded(
    cmd: Command,
    timeout: Duration,
) -> Result<(bool, String, String), String> {
    let what = format!("{cmd:?}");
    let out = crate::runner::run_collect(cmd, timeout)?;
    match out.status {
        Some(st) => Ok((st.success(), out.stdout, out.stderr)),
        None => Err(format!(
            "{what} was killed after {timeout:?} or could not be waited for\n\
             ---- stdout ----\n{}\n---- stderr ----\n{}",
            out.stdout, out.stderr
        )),
    }
}

/// Runs a build step; `Err` with its output when it fails.
fn step(cmd: Command, what: &str) -> Result<(), String> {
    let (ok, out, err) = run_bounded(cmd, BUILD_TIMEOUT)?;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} failed\n---- stdout ----\n{out}\n---- stderr ----\n{err}"
        ))
    }
}

/// Finds the toolchain and the jars, and compiles the programs unless a
/// build of the same inputs is there.
fn setup() -> Setup {
    let Some(javac_version) = tool_output("javac", &["-version"]) else {
        return Setup::Missing(
            "`javac` is not on PATH (Debian package openjdk-17-jdk-headless)".into(),
        );
    };
    if tool_output("java", &["-version"]).is_none() {
        return Setup::Missing(
            "`java` is not on PATH (Debian package openjdk-17-jre-headless)".into(),
        );
    }
    let Some(protoc_version) = tool_output("protoc", &["--version"]) else {
        return Setup::Missing("`protoc` is not on PATH (Debian package protobuf-compiler)".into());
    };
    let Some(plugin) = grpc_java_plugin() else {
        return Setup::Missing(
            "`grpc_java_plugin` is neither ROTOR_GRPC_JAVA_PLUGIN nor on PATH (Debian package \
             protobuf-compiler-grpc-java-plugin)"
                .into(),
        );
    };
    let (runtime, compile_only) = match (jars(RUNTIME_JARS), jars(COMPILE_JARS)) {
        (Ok(r), Ok(c)) => (r, c),
        (Err(why), _) | (_, Err(why)) => return Setup::Missing(why),
    };
    let Some(jni) = tcnative_jni() else {
        return Setup::Missing(format!(
            "/usr/lib/<multiarch>/jni/{TCNATIVE_JNI} is missing (Debian package libnetty-tcnative-jni)"
        ));
    };
    let sources = sources();
    if sources.is_empty() {
        return Setup::Failed("no Java sources under tests/interop/java/src".into());
    }
    let proto_dir = root().join("proto");

    // The build's name: a hash of everything it is made from.
    let mut h = DefaultHasher::new();
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| proto_dir.join(p)).collect();
    for p in sources.iter().chain(&protos) {
        p.hash(&mut h);
        fs::read(p).unwrap_or_default().hash(&mut h);
    }
    for jar in runtime.iter().chain(&compile_only).chain([&jni]) {
        let real = fs::canonicalize(jar).unwrap_or_else(|_| jar.clone());
        real.hash(&mut h);
        fs::metadata(&real)
            .map(|m| m.len())
            .unwrap_or(0)
            .hash(&mut h);
    }
    (javac_version, protoc_version, &plugin).hash(&mut h);
    let build_root = java_dir().join("build");
    let done = build_root.join(format!("{:016x}", h.finish()));
    let classes = done.join("classes");
    let mut cp = vec![classes.clone()];
    cp.extend(runtime.iter().cloned());
    let java = Java {
        classpath: join_classpath(&cp),
        library_path: done.join("native"),
    };
    if done.join("ok").is_file() {
        return Setup::Ready(java);
    }

    // Build in a scratch directory of our own, then move it into place.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let scratch = build_root.join(format!(".tmp-{}-{nanos}", std::process::id()));
    let built = build(
        &scratch,
        &plugin,
        &proto_dir,
        &sources,
        &runtime,
        &compile_only,
    )
    .and_then(|()| {
        let native = scratch.join("native");
        fs::create_dir_all(&native)
            .and_then(|()| fs::copy(&jni, native.join("libnetty_tcnative.so")))
            .map(|_| ())
            .map_err(|e| format!("copy {}: {e}", jni.display()))
    })
    .and_then(|()| fs::write(scratch.join("ok"), "").map_err(|e| format!("write the stamp: {e}")));
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&scratch);
        return Setup::Failed(e);
    }
    if fs::rename(&scratch, &done).is_err() {
        // Another process finished the same build first.
        let _ = fs::remove_dir_all(&scratch);
        if !done.join("ok").is_file() {
            return Setup::Failed(format!("could not move the build to {}", done.display()));
        }
    }
    // Builds of older inputs are of no use any more, nor are scratch
    // directories an interrupted build left behind (an hour old).
    if let Ok(entries) = fs::read_dir(&build_root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale = if name.starts_with(".tmp-") {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(3600))
            } else {
                !name.starts_with('.') && e.path() != done
            };
            if stale {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Setup::Ready(java)
}

/// protoc with the grpc-java plugin, then javac, into `scratch`.
fn build(
    scratch: &Path,
    plugin: &Path,
    proto_dir: &Path,
    sources: &[PathBuf],
    runtime: &[PathBuf],
    compile_only: &[PathBuf],
) -> Result<(), String> {
    let gen_dir = scratch.join("gen");
    let classes = scratch.join("classes");
    for d in [&gen_dir, &classes] {
        fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let mut protoc = Command::new("protoc");
    protoc
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!(
            "--plugin=protoc-gen-grpc-java={}",
            plugin.display()
        ))
        .arg(format!("--java_out={}", gen_dir.display()))
        .arg(format!("--grpc-java_out={}", gen_dir.display()));
    for p in PROTOS {
        protoc.arg(proto_dir.join(p));
    }
    step(protoc, "protoc --java_out --grpc-java_out")?;

    let mut all = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "java") {
                out.push(p);
            }
        }
    }
    walk(&gen_dir, &mut all);
    if all.is_empty() {
        return Err("protoc generated no Java sources".into());
    }
    all.extend(sources.iter().cloned());
    // A javac argument file: one quoted path per line.
    let list: String = all
        .iter()
        .map(|p| {
            let s = p
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("\"{s}\"\n")
        })
        .collect();
    let argfile = scratch.join("sources.txt");
    fs::write(&argfile, list).map_err(|e| format!("write {}: {e}", argfile.display()))?;
    let mut cp: Vec<PathBuf> = runtime.to_vec();
    cp.extend(compile_only.iter().cloned());
    let mut javac = Command::new("javac");
    javac
        .args(["--release", "17", "-encoding", "UTF-8", "-nowarn", "-d"])
        .arg(&classes)
        .arg("-cp")
        .arg(join_classpath(&cp))
        .arg(format!("@{}", argfile.display()));
    step(javac, "javac")
}

/// The compiled programs, or `None` when this test is skipped.
pub(crate) fn java(label: &str) -> Option<&'static Java> {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    match SETUP.get_or_init(setup) {
        Setup::Ready(j) => Some(j),
        Setup::Failed(e) => panic!("java interop {label}: building the Java programs failed: {e}"),
        Setup::Missing(why) => {
            if std::env::var("ROTOR_REQUIRE_INTEROP").as_deref() == Ok("1") {
                panic!(
                    "java interop {label}: {why}. Run `bash tests/run.sh` (it installs the Java \
                     toolchain from Debian packages)."
                );
            }
            eprintln!(
                "\n!!!!!!!! SKIP java interop {label}: {why}. Run `bash tests/run.sh` to install \
                 it (set ROTOR_REQUIRE_INTEROP=1 to make this a failure) !!!!!!!!\n"
            );
            None
        }
    }
}
