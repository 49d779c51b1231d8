//! A throwaway PostgreSQL server from Debian's `postgresql` package, on
//! loopback, for the tests of the shared store: its own data directory in
//! /tmp, `trust` authentication for the superuser `confab`, no fsync, and
//! an immediate stop when dropped.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A running server.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest installed server's programs (`/usr/lib/postgresql/N/bin`).
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Postgres {
    /// Starts a server, or says SKIPPED and returns None when PostgreSQL is
    /// not installed (a failure under `CONFAB_INTEROP=1`).
    pub fn start(name: &str) -> Option<Self> {
        let Some(bin) = server_bin() else {
            crate::missing("PostgreSQL", "apt-get install postgresql");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("confab-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the server's directory");
        // initdb refuses to run as root: then the server runs as the
        // package's `postgres` user.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let pg = Self {
            bin,
            dir,
            port: crate::free_port(),
            as_postgres,
        };
        let data = pg.dir.join("data");
        pg.run_pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "confab".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            pg.port,
            pg.dir.display()
        );
        pg.run_pg(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                pg.dir.join("server.log").as_os_str(),
                "-o".as_ref(),
                opts.as_ref(),
            ],
        );
        Some(pg)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://confab@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_pg(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        run(self.command(program).args(args).current_dir(&self.dir))
    }
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("run a PostgreSQL program");
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&data)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
