//! Certificates for TLS tests, made by openssl in a temporary folder: a
//! test CA, and leaf certificates it signs for `127.0.0.1` and
//! `localhost` (one for sono, one for a peer) and one for `other.test`
//! only (a peer with a certificate for another name).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sono::require_tool;

pub struct TestCertificates {
    dir: PathBuf,
}

impl TestCertificates {
    /// Makes the CA and the leaves `sono`, `peer` (both for 127.0.0.1 and
    /// localhost) and `other` (for other.test only).
    pub fn make(tag: &str) -> TestCertificates {
        require_tool("openssl", "openssl");
        let dir = std::env::temp_dir().join(format!("sono-certs-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for certificates");
        let certs = TestCertificates { dir };
        certs.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sono test CA",
        ]);
        for (name, san) in [
            ("sono", "IP:127.0.0.1,DNS:localhost"),
            ("peer", "IP:127.0.0.1,DNS:localhost"),
            ("other", "DNS:other.test"),
        ] {
            let ext = format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            );
            std::fs::write(certs.dir.join(format!("{name}.ext")), ext).expect("an extension file");
            certs.openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}.test"),
            ]);
            certs.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
            let combined = [
                std::fs::read(certs.certificate(name)).expect("the certificate"),
                std::fs::read(certs.key(name)).expect("the key"),
            ]
            .concat();
            std::fs::write(certs.combined(name), combined).expect("certificate and key");
        }
        certs
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn certificate(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// The certificate followed by its key, in one PEM file (baresip's form).
    pub fn combined(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-combined.pem"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `[sip]` settings for SIP over TLS on `port` with sono's
    /// certificate, trusting the test CA.
    pub fn sono_settings(&self, port: u16) -> String {
        format!(
            "tls_listen = \"127.0.0.1:{port}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\ntls_ca = \"{}\"\n",
            self.certificate("sono").display(),
            self.key("sono").display(),
            self.ca().display()
        )
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
