//! Command-line options of the examples: `--name value` or `--name=value`,
//! some repeatable. Unknown options are refused with the usage line.
//! Every example takes `--tls-cert PEM --tls-key PEM` to serve `https://`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;

/// The options given.
pub(crate) struct Args {
    given: Vec<(String, String)>,
}

impl Args {
    /// Parses the process arguments against the options an example takes
    /// (names without `--`); exits with the usage on `--help` or a mistake.
    pub(crate) fn parse(usage: &str, known: &[&str]) -> Args {
        let fail = |msg: &str| -> ! {
            eprintln!("{msg}\nusage: {usage}");
            exit(2)
        };
        let mut given = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                println!("usage: {usage}");
                exit(0);
            }
            let Some(option) = arg.strip_prefix("--") else { fail(&format!("unexpected argument {arg:?}")) };
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => match args.next() {
                    Some(value) => (option.to_owned(), value),
                    None => fail(&format!("--{option} needs a value")),
                },
            };
            if !known.contains(&name.as_str()) {
                fail(&format!("unknown option --{name}"));
            }
            given.push((name, value));
        }
        Args { given }
    }

    /// The last value of an option.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.given.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable option, in order.
    #[allow(dead_code)]
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.given.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// `--addr HOST:PORT`, or `default`; exits when it does not resolve.
    pub(crate) fn addr(&self, default: &str) -> SocketAddr {
        let addr = self.get("addr").unwrap_or(default);
        match addr.to_socket_addrs().ok().and_then(|mut a| a.next()) {
            Some(addr) => addr,
            None => {
                eprintln!("--addr {addr:?} is not HOST:PORT");
                exit(2)
            }
        }
    }

    /// A number option; exits when it is not one.
    #[allow(dead_code)]
    pub(crate) fn number(&self, name: &str) -> Option<usize> {
        let value = self.get(name)?;
        match value.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("--{name} {value:?} is not a number");
                exit(2)
            }
        }
    }

    /// `--tls-cert PEM --tls-key PEM` (both or neither): the server's TLS;
    /// exits when a file cannot be read or the pair is refused.
    pub(crate) fn tls(&self) -> Option<sse_smol::ServerTls> {
        let fail = |msg: String| -> ! {
            eprintln!("{msg}");
            exit(2)
        };
        let (cert, key) = match (self.get("tls-cert"), self.get("tls-key")) {
            (None, None) => return None,
            (Some(cert), Some(key)) => (cert, key),
            _ => fail("--tls-cert and --tls-key go together".into()),
        };
        let read = |path: &str| std::fs::read(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        match sse_smol::ServerTls::from_pem(&read(cert), &read(key)) {
            Ok(tls) => Some(tls),
            Err(e) => fail(format!("--tls-cert {cert} --tls-key {key}: {e}")),
        }
    }

    /// `https` with `--tls-cert`, else `http`: for the start-up message.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.get("tls-cert").is_some() { "https" } else { "http" }
    }
}
