//! `publish` from a client: permission (or the publish proxy), data
//! format, then the node's publish path. The publisher also receives its
//! own publication if it is subscribed.

use super::permissions::{Who, can_publish};
use super::subscribe::engine_error;
use super::{Fail, Session};
use crate::config::DataFormat;
use crate::proto::client::{PublishRequest, PublishResult, Reply};
use crate::proto::rawjson;
use crate::protocol::{ClientError, Disconnect};

/// Checks `data` against a namespace's `publication_data_format`.
pub(crate) fn data_format_ok(format: DataFormat, data: &[u8]) -> bool {
    match format {
        DataFormat::Json => rawjson::is_valid(data),
        DataFormat::JsonObject => {
            data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && rawjson::is_valid(data)
        }
        DataFormat::Unset | DataFormat::Binary => true,
    }
}

impl Session {
    pub(super) async fn publish(&mut self, id: u32, req: PublishRequest) -> Result<(), Fail> {
        if req.channel.is_empty() || req.data.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        if req.r#type != 0 {
            return Err(ClientError::NotAvailable.into());
        }
        let rules = self.node.rules();
        let opts = rules.options(&req.channel)?;
        rules.validate_client_channel(&req.channel, &opts)?;
        if opts.opts.subscribe_stream_proxy_enabled {
            let format = opts.opts.publication_data_format;
            return self
                .stream_publish(id, &req.channel, req.data, format)
                .await;
        }
        let subscribed = self.shared.is_active(&req.channel);
        let who = Who {
            user: &self.user,
            subscribed,
            insecure: self.node.config().client.insecure,
        };
        // With a publish proxy the backend decides instead of the flags.
        let proxied = opts.opts.publish_proxy_enabled;
        if !proxied && !can_publish(who, &opts) {
            return Err(ClientError::PermissionDenied.into());
        }
        if !data_format_ok(opts.opts.publication_data_format, &req.data) {
            return Err(ClientError::BadRequest.into());
        }
        let chan_info = self
            .subs
            .get(&req.channel)
            .map(|s| s.chan_info.clone())
            .unwrap_or_default();
        let mut popts = self.node.publish_options(&opts);
        popts.client_info = Some(self.client_info(&chan_info));
        let data = if proxied {
            self.proxy_publish(
                &opts.opts.publish_proxy_name,
                &req.channel,
                req.data,
                &mut popts,
            )
            .await?
        } else {
            req.data
        };
        self.node
            .publish(&req.channel, data, &popts)
            .await
            .map_err(engine_error)?;
        self.reply(Reply {
            id,
            publish: Some(PublishResult {}),
            ..Default::default()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::data_format_ok;
    use crate::config::DataFormat::{Binary, Json, JsonObject, Unset};

    #[test]
    fn data_formats() {
        assert!(data_format_ok(Unset, b"\x00\x01"));
        assert!(data_format_ok(Binary, b"\x00"));
        assert!(data_format_ok(Json, b"\"s\""));
        assert!(!data_format_ok(Json, b"{"));
        assert!(data_format_ok(JsonObject, b" {\"a\":1}"));
        assert!(!data_format_ok(JsonObject, b"[1]"));
    }
}
