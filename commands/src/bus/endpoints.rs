//! Endpoint-registry commands. One stream holds every endpoint of a route shape.

use super::{CommandBus, CommandContext, Committed, StoredEvent};
use crate::CommandError;
use chrono::{DateTime, Utc};
use keyledger_domain::{Endpoint, EndpointCommand, EndpointEvent, Permission};
use uuid::Uuid;

impl CommandBus {
    /// The events of one route stream, oldest first. The registry is platform-wide: any admin
    /// with read access may see it.
    pub async fn endpoint_events(
        &self,
        ctx: &CommandContext,
        route_id: Uuid,
    ) -> Result<Vec<StoredEvent<EndpointEvent>>, CommandError> {
        ctx.require(Permission::ApiManagementRead)?;
        self.stream::<Endpoint>(&route_id.to_string()).await
    }

    /// The current state of one route stream (every endpoint of that shape).
    pub async fn load_route(&self, ctx: &CommandContext, route_id: Uuid) -> Result<Endpoint, CommandError> {
        ctx.require(Permission::ApiManagementRead)?;
        Ok(self.load::<Endpoint>(&route_id.to_string()).await?.state)
    }

    /// Runs an Endpoint command built for the bus's current time. Registry changes need
    /// SUPERUSER; enabling or disabling for a tenant needs TENANT_ADMIN of that tenant. The
    /// answer is the route as the command left it.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor.label(), %route_id), err)]
    pub async fn endpoint_command(
        &self,
        ctx: &CommandContext,
        route_id: Uuid,
        build: impl FnOnce(DateTime<Utc>) -> EndpointCommand,
    ) -> Result<Committed<Endpoint>, CommandError> {
        let at = self.clock.now();
        let command = build(at);
        let tenant = match &command {
            EndpointCommand::SetTenantEnabled { tenant, .. } => {
                ctx.require(Permission::TenantAdmin)?;
                if !ctx.actor.may_access(tenant) {
                    return Err(CommandError::Forbidden(format!(
                        "you cannot change endpoints for tenant {tenant}"
                    )));
                }
                tenant.clone()
            }
            _ => {
                ctx.require(Permission::Superuser)?;
                ctx.actor.tenant.clone()
            }
        };
        let stream = route_id.to_string();
        let loaded = self.load::<Endpoint>(&stream).await?;
        let metadata = self.metadata(ctx, &tenant, at);
        let decided = self
            .decide(&stream, loaded, command, metadata, CommandError::Endpoint)
            .await?;
        self.committed(decided.state, decided.position).await
    }
}
