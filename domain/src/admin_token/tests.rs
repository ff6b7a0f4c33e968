use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type TokenTest = TestFramework<AdminToken>;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn actor(permissions: &[Permission], scopes: ScopeGrant) -> Actor {
    Actor {
        token_id: Some(Uuid::from_u128(1)),
        tenant: "acme".parse().unwrap(),
        permissions: permissions.iter().copied().collect(),
        scopes,
    }
}

fn tenant_admin() -> Actor {
    actor(
        &[Permission::TenantAdmin],
        ScopeGrant::Only(["FILES_READ".parse().unwrap()].into()),
    )
}

fn issue(issuer: Actor) -> IssueAdminToken {
    IssueAdminToken {
        token_id: Uuid::from_u128(2),
        tenant: "acme".parse().unwrap(),
        name: "CI".parse().unwrap(),
        permissions: [Permission::ApiManagementWrite].into(),
        scopes: None,
        expires_at: None,
        fingerprint: TokenFingerprint::from_hex("00ff".into()),
        secret_hash: SecretHash::from_phc("$pbkdf2-sha256$x".into()),
        issuer,
        at: t(0),
    }
}

fn issued(issuer: Actor) -> AdminTokenEvent {
    let c = issue(issuer.clone());
    AdminTokenEvent::AdminTokenIssued {
        token_id: c.token_id,
        tenant: c.tenant,
        name: c.name,
        permissions: c.permissions,
        scopes: issuer.scopes,
        expires_at: None,
        fingerprint: c.fingerprint,
        secret_hash: c.secret_hash,
        at: t(0),
    }
}

#[tokio::test]
async fn a_tenant_admin_issues_a_token_holding_its_own_scopes_by_default() {
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(issue(tenant_admin()))))
        .await
        .then_expect_events(vec![issued(tenant_admin())]);
}

#[tokio::test]
async fn a_second_token_with_the_same_name_is_rejected() {
    TokenTest::with(())
        .given(vec![issued(tenant_admin())])
        .when_async(AdminTokenCommand::Issue(Box::new(issue(tenant_admin()))))
        .await
        .then_expect_error(AdminTokenError::TokenAlreadyExists { name: "CI".into() });
}

#[tokio::test]
async fn a_deleted_tokens_name_can_be_used_again() {
    let again = IssueAdminToken {
        token_id: Uuid::from_u128(3),
        ..issue(tenant_admin())
    };
    let result = TokenTest::with(())
        .given(vec![
            issued(tenant_admin()),
            AdminTokenEvent::AdminTokenDeleted {
                token_id: Uuid::from_u128(2),
                at: t(1),
            },
        ])
        .when_async(AdminTokenCommand::Issue(Box::new(again)))
        .await
        .inspect_result();
    assert!(matches!(
        result.as_deref(),
        Ok([AdminTokenEvent::AdminTokenIssued { .. }])
    ));
}

#[tokio::test]
async fn granting_a_permission_the_issuer_lacks_is_rejected() {
    let cmd = IssueAdminToken {
        permissions: [Permission::Superuser].into(),
        ..issue(tenant_admin())
    };
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(cmd)))
        .await
        .then_expect_error(AdminTokenError::PermissionNotGrantable {
            permission: Permission::Superuser,
        });
}

#[tokio::test]
async fn granting_a_scope_the_issuer_lacks_is_rejected() {
    let cmd = IssueAdminToken {
        scopes: Some(["CHAT_READ".parse().unwrap()].into()),
        ..issue(tenant_admin())
    };
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(cmd)))
        .await
        .then_expect_error(AdminTokenError::ScopeNotGrantable {
            scope: "CHAT_READ".parse().unwrap(),
        });
}

#[tokio::test]
async fn a_token_without_permissions_is_rejected() {
    let cmd = IssueAdminToken {
        permissions: BTreeSet::new(),
        ..issue(tenant_admin())
    };
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(cmd)))
        .await
        .then_expect_error(AdminTokenError::NoPermissions);
}

#[tokio::test]
async fn a_tenant_admin_cannot_issue_tokens_for_another_tenant() {
    let cmd = IssueAdminToken {
        tenant: "other".parse().unwrap(),
        ..issue(tenant_admin())
    };
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(cmd)))
        .await
        .then_expect_error(AdminTokenError::TenantNotAllowed {
            tenant: "other".parse().unwrap(),
        });
}

#[tokio::test]
async fn a_token_expiring_in_the_past_is_rejected() {
    let cmd = IssueAdminToken {
        expires_at: Some(t(0)),
        ..issue(tenant_admin())
    };
    TokenTest::with(())
        .given_no_previous_events()
        .when_async(AdminTokenCommand::Issue(Box::new(cmd)))
        .await
        .then_expect_error(AdminTokenError::ExpiryInPast);
}

#[tokio::test]
async fn deleting_a_live_token_records_it_and_deleting_it_again_is_rejected() {
    TokenTest::with(())
        .given(vec![issued(tenant_admin())])
        .when_async(AdminTokenCommand::Delete {
            token_id: Uuid::from_u128(2),
            by: tenant_admin(),
            at: t(1),
        })
        .await
        .then_expect_events(vec![AdminTokenEvent::AdminTokenDeleted {
            token_id: Uuid::from_u128(2),
            at: t(1),
        }]);
    TokenTest::with(())
        .given(vec![
            issued(tenant_admin()),
            AdminTokenEvent::AdminTokenDeleted {
                token_id: Uuid::from_u128(2),
                at: t(1),
            },
        ])
        .when_async(AdminTokenCommand::Delete {
            token_id: Uuid::from_u128(2),
            by: tenant_admin(),
            at: t(2),
        })
        .await
        .then_expect_error(AdminTokenError::TokenNotFound);
}

#[tokio::test]
async fn only_someone_holding_every_permission_of_a_token_may_delete_it() {
    let superuser = actor(&[Permission::Superuser], ScopeGrant::All);
    let superusers_token = AdminTokenEvent::AdminTokenIssued {
        token_id: Uuid::from_u128(2),
        tenant: "acme".parse().unwrap(),
        name: "root".parse().unwrap(),
        permissions: [Permission::Superuser].into(),
        scopes: ScopeGrant::All,
        expires_at: None,
        fingerprint: TokenFingerprint::from_hex("00ff".into()),
        secret_hash: SecretHash::from_phc("$pbkdf2-sha256$x".into()),
        at: t(0),
    };
    TokenTest::with(())
        .given(vec![superusers_token.clone()])
        .when_async(AdminTokenCommand::Delete {
            token_id: Uuid::from_u128(2),
            by: tenant_admin(),
            at: t(1),
        })
        .await
        .then_expect_error(AdminTokenError::PermissionNotHeld {
            permission: Permission::Superuser,
        });
    TokenTest::with(())
        .given(vec![superusers_token])
        .when_async(AdminTokenCommand::Delete {
            token_id: Uuid::from_u128(2),
            by: superuser,
            at: t(1),
        })
        .await
        .then_expect_events(vec![AdminTokenEvent::AdminTokenDeleted {
            token_id: Uuid::from_u128(2),
            at: t(1),
        }]);
}

#[test]
fn token_names_are_unique_regardless_of_case() {
    let tenant: TenantId = "acme".parse().unwrap();
    assert_eq!(
        token_stream_id(&tenant, &"CI".parse().unwrap()),
        token_stream_id(&tenant, &"ci".parse().unwrap())
    );
    assert_ne!(
        token_stream_id(&tenant, &"CI".parse().unwrap()),
        token_stream_id(&"other".parse().unwrap(), &"CI".parse().unwrap())
    );
}
