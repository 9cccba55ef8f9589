//! Runs every party of a sandbox in this process, on loopback, over real mTLS.

use std::path::Path;

use actix_web::dev::ServerHandle;
use sqlx::AnyPool;

use crate::{io_error, Layout, SandboxError};

/// Choices a test or demo may make when starting a sandbox.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Overrides the center's database (e.g. a fresh PostgreSQL database).
    pub center_database_url: Option<String>,
}

/// A started sandbox. Dropping it does not stop the servers: call [`RunningSandbox::stop`].
pub struct RunningSandbox {
    pub layout: Layout,
    pub center_url: String,
    pub center_port: u16,
    pub adapter_ports: Vec<(String, u16)>,
    pub center_pool: AnyPool,
    handles: Vec<ServerHandle>,
}

impl RunningSandbox {
    /// Stops every server gracefully.
    pub async fn stop(self) {
        for handle in self.handles {
            handle.stop(true).await;
        }
    }

    /// The kiosk settings file of `operator` (rewritten with the running center's URL).
    pub fn kiosk_config(&self, operator: &str) -> Option<&Path> {
        self.layout
            .kiosk_configs
            .iter()
            .find(|(o, _)| o == operator)
            .map(|(_, p)| p.as_path())
    }
}

/// Starts the adapters, then the center (pointed at the adapters' actual ports), and
/// rewrites the kiosk settings with the center's actual URL. Every listener binds an
/// ephemeral loopback port, so many sandboxes can run side by side.
pub async fn start(dir: &Path, options: StartOptions) -> Result<RunningSandbox, SandboxError> {
    let layout = Layout::open(dir)?;
    let mut handles = Vec::new();
    let mut adapter_ports = Vec::new();
    let loopback_any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();

    for (name, path) in &layout.adapter_configs {
        let mut settings = municipal_adapter::configuration::Settings::load(path)
            .map_err(|e| SandboxError::Invalid(format!("adapter {name}: {e}")))?;
        settings.listen = loopback_any.to_string();
        let app = municipal_adapter::startup::Application::build(settings)
            .await
            .map_err(|e| SandboxError::Invalid(format!("adapter {name}: {e}")))?;
        adapter_ports.push((name.clone(), app.port()));
        handles.push(app.handle());
        tokio::spawn(app.run_until_stopped());
    }

    let mut settings = center::configuration::Settings::load(&layout.center_config)
        .map_err(|e| SandboxError::Invalid(format!("center: {e}")))?;
    settings.kiosk_listen = loopback_any;
    if let Some(url) = options.center_database_url {
        settings.database_url = url;
    }
    for municipality in &mut settings.municipalities {
        let adapter = adapter_of(&layout, &municipality.code.to_string())?;
        let port = adapter_ports
            .iter()
            .find(|(n, _)| *n == adapter)
            .map(|(_, p)| *p)
            .ok_or_else(|| SandboxError::Invalid(format!("no adapter {adapter}")))?;
        municipality.adapter_url = format!("https://127.0.0.1:{port}");
    }
    let app = center::startup::Application::build(settings)
        .await
        .map_err(|e| SandboxError::Invalid(format!("center: {e}")))?;
    let center_port = app.port();
    let center_pool = app.pool();
    handles.push(app.handle());
    tokio::spawn(app.run_until_stopped());
    let center_url = format!("https://127.0.0.1:{center_port}");

    for (_, path) in &layout.kiosk_configs {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let mut value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| SandboxError::Invalid(e.to_string()))?;
        value.insert("center_url".into(), toml::Value::String(center_url.clone()));
        let text =
            toml::to_string_pretty(&value).map_err(|e| SandboxError::Invalid(e.to_string()))?;
        std::fs::write(path, text).map_err(io_error(path))?;
    }

    Ok(RunningSandbox {
        layout,
        center_url,
        center_port,
        adapter_ports,
        center_pool,
        handles,
    })
}

/// The adapter serving `code`, read from the adapters' settings files.
fn adapter_of(layout: &Layout, code: &str) -> Result<String, SandboxError> {
    for (name, path) in &layout.adapter_configs {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| SandboxError::Invalid(e.to_string()))?;
        let serves = value
            .get("municipalities")
            .and_then(|m| m.as_array())
            .is_some_and(|list| {
                list.iter()
                    .any(|m| m.get("code").and_then(|c| c.as_str()) == Some(code))
            });
        if serves {
            return Ok(name.clone());
        }
    }
    Err(SandboxError::Invalid(format!(
        "no adapter serves municipality {code}"
    )))
}
