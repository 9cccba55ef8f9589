//! The deployment's X.509 CA and the TLS certificates of every party (rcgen).
//! Roles are carried as URI SANs (see the `mtls` crate).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// A certificate authority able to issue server and client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// Where a certificate and its key were written.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(|source| PkiError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "konbini-kofu sandbox");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl Ca {
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn write_cert(&self, path: &Path) -> Result<(), PkiError> {
        write(path, &self.cert_pem)
    }

    /// A server certificate for `hosts` (DNS names or IP addresses), optionally with
    /// a role URI.
    pub fn issue_server(
        &self,
        common_name: &str,
        hosts: &[&str],
        role_uri: Option<&str>,
        dir: &Path,
        file_stem: &str,
    ) -> Result<CertFiles, PkiError> {
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if let Some(uri) = role_uri {
            params.subject_alt_names.push(SanType::URI(uri.try_into()?));
        }
        self.issue(params, common_name, dir, file_stem)
    }

    /// A client certificate carrying `role_uri` (e.g. `urn:kofu:operator:seven`).
    pub fn issue_client(
        &self,
        common_name: &str,
        role_uri: &str,
        dir: &Path,
        file_stem: &str,
    ) -> Result<CertFiles, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .subject_alt_names
            .push(SanType::URI(role_uri.try_into()?));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, common_name, dir, file_stem)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        dir: &Path,
        file_stem: &str,
    ) -> Result<CertFiles, PkiError> {
        params.distinguished_name = name(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: dir.join(format!("{file_stem}.pem")),
            key: dir.join(format!("{file_stem}.key.pem")),
        };
        write(&files.cert, &cert.pem())?;
        write(&files.key, &key.serialize_pem())?;
        Ok(files)
    }
}
