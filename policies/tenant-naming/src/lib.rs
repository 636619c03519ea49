//! Naming: a template with the tenant in it, for platforms that keep many
//! tenants' backups side by side.
//!
//! config: `{ template = "{tenant}-{database}-{datetime}.{ext}", no_tenant = "shared" }`
//! Placeholders: {tenant}, {database}, {engine}, {datetime} (UTC,
//! YYYYmmddTHHMMSSZ), {ext}.

use rcbackup_guest::time::civil;
use rcbackup_guest::{export_policy, Naming, NamingContext};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_template")]
    template: String,
    #[serde(default = "default_no_tenant")]
    no_tenant: String,
}

fn default_template() -> String {
    "{tenant}-{database}-{datetime}.{ext}".into()
}

fn default_no_tenant() -> String {
    "shared".into()
}

fn datetime(t: i64) -> String {
    let (y, m, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Only letters, digits, `-` and `_` of a tenant or database name go into
/// the file name, so no tenant can smuggle a path in.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An extension keeps its dots (`sqlite3.zst` for a compressed backup).
fn ext_slug(ext: &str) -> String {
    ext.split('.').map(slug).collect::<Vec<_>>().join(".")
}

struct TenantNaming;

impl Naming for TenantNaming {
    fn naming(ctx: NamingContext) -> Result<String, String> {
        let config: Config = rcbackup_guest::config()?;
        if !config.template.contains("{datetime}") {
            return Err(
                "config key `template` must contain {datetime} so that names do not collide".into(),
            );
        }
        let tenant = ctx.tenant.as_deref().unwrap_or(&config.no_tenant);
        Ok(config
            .template
            .replace("{tenant}", &slug(tenant))
            .replace("{database}", &slug(&ctx.database))
            .replace("{engine}", &slug(&ctx.engine))
            .replace("{datetime}", &datetime(ctx.now))
            .replace("{ext}", &ext_slug(&ctx.extension)))
    }
}

export_policy!(TenantNaming: naming);
