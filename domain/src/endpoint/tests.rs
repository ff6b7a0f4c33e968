use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type EndpointTest = TestFramework<Endpoint>;

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn methods(list: &[&str]) -> BTreeSet<HttpMethod> {
    list.iter().map(|m| m.parse().unwrap()).collect()
}

fn spec(list: &[&str], path: &str) -> EndpointSpec {
    EndpointSpec {
        methods: methods(list),
        path: path.parse().unwrap(),
        plugin: PluginName::try_from("Files".to_owned()).unwrap(),
        description: Description::try_from("Read a file".to_owned()).unwrap(),
        required_scopes: ["FILES_READ".parse().unwrap()].into(),
        request_schema: None,
        response_schema: None,
        upstream_url: UpstreamUrl::try_from("http://files.internal".to_owned()).unwrap(),
    }
}

fn registered(n: u128, list: &[&str], path: &str) -> EndpointEvent {
    EndpointEvent::EndpointRegistered {
        endpoint_id: id(n),
        spec: spec(list, path),
        at: t(0),
    }
}

fn register(n: u128, list: &[&str], path: &str) -> EndpointCommand {
    EndpointCommand::Register {
        endpoint_id: id(n),
        spec: Box::new(spec(list, path)),
        at: t(0),
    }
}

#[tokio::test]
async fn registering_an_endpoint_records_it() {
    EndpointTest::with(())
        .given_no_previous_events()
        .when_async(register(1, &["GET", "HEAD"], "/files/{id}"))
        .await
        .then_expect_events(vec![registered(1, &["GET", "HEAD"], "/files/{id}")]);
}

#[tokio::test]
async fn a_method_already_served_on_the_same_route_is_refused() {
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(register(2, &["GET", "DELETE"], "/files/{file_id}"))
        .await
        .then_expect_error(EndpointError::MethodTaken {
            method: HttpMethod::Get,
            path: "/files/{id}".into(),
            endpoint_id: id(1),
        });
}

#[tokio::test]
async fn other_methods_on_the_same_route_are_separate_endpoints() {
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(register(2, &["DELETE"], "/files/{id}"))
        .await
        .then_expect_events(vec![registered(2, &["DELETE"], "/files/{id}")]);
}

#[tokio::test]
async fn an_endpoint_without_methods_is_refused() {
    EndpointTest::with(())
        .given_no_previous_events()
        .when_async(register(1, &[], "/x"))
        .await
        .then_expect_error(EndpointError::NoMethods);
}

#[tokio::test]
async fn a_change_records_only_what_differs() {
    let change = EndpointChange {
        description: Some(Description::try_from("Read a file".to_owned()).unwrap()),
        required_scopes: Some(["FILES_READ".parse().unwrap(), "FILES_DOWNLOAD".parse().unwrap()].into()),
        request_schema: Some(Some(
            JsonSchema::try_from(serde_json::json!({"type": "object"})).unwrap(),
        )),
        ..Default::default()
    };
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(EndpointCommand::Change {
            endpoint_id: id(1),
            change: Box::new(change),
            at: t(1),
        })
        .await
        .then_expect_events(vec![
            EndpointEvent::EndpointChanged {
                endpoint_id: id(1),
                methods: None,
                path: None,
                plugin: None,
                description: None,
                required_scopes: Some(["FILES_READ".parse().unwrap(), "FILES_DOWNLOAD".parse().unwrap()].into()),
                upstream_url: None,
                at: t(1),
            },
            EndpointEvent::EndpointSchemasChanged {
                endpoint_id: id(1),
                request_schema: Some(JsonSchema::try_from(serde_json::json!({"type": "object"})).unwrap()),
                response_schema: None,
                at: t(1),
            },
        ]);
}

#[tokio::test]
async fn a_path_can_be_renamed_only_within_its_shape() {
    let change = EndpointChange {
        path: Some("/files/{id}/raw".parse().unwrap()),
        ..Default::default()
    };
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(EndpointCommand::Change {
            endpoint_id: id(1),
            change: Box::new(change),
            at: t(1),
        })
        .await
        .then_expect_error(EndpointError::PathShapeChanged {
            expected: "/files/{}".into(),
        });
}

#[tokio::test]
async fn importing_an_unchanged_endpoint_changes_nothing() {
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(EndpointCommand::Import {
            new_id: id(9),
            spec: Box::new(spec(&["GET"], "/files/{id}")),
            at: t(1),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn importing_a_new_method_registers_it_and_a_changed_one_changes_it() {
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(EndpointCommand::Import {
            new_id: id(9),
            spec: Box::new(spec(&["DELETE"], "/files/{id}")),
            at: t(0),
        })
        .await
        .then_expect_events(vec![registered(9, &["DELETE"], "/files/{id}")]);
    let mut changed = spec(&["GET"], "/files/{id}");
    changed.description = Description::try_from("Download a file".to_owned()).unwrap();
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/files/{id}")])
        .when_async(EndpointCommand::Import {
            new_id: id(9),
            spec: Box::new(changed),
            at: t(1),
        })
        .await
        .then_expect_events(vec![EndpointEvent::EndpointChanged {
            endpoint_id: id(1),
            methods: None,
            path: None,
            plugin: None,
            description: Some(Description::try_from("Download a file".to_owned()).unwrap()),
            required_scopes: None,
            upstream_url: None,
            at: t(1),
        }]);
}

#[tokio::test]
async fn deprecating_records_the_sunset_once_and_refuses_a_past_one() {
    let sunset = Some(t(5));
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::Deprecate {
            endpoint_id: id(1),
            sunset,
            at: t(1),
        })
        .await
        .then_expect_events(vec![EndpointEvent::EndpointDeprecated {
            endpoint_id: id(1),
            sunset,
            at: t(1),
        }]);
    EndpointTest::with(())
        .given(vec![
            registered(1, &["GET"], "/x"),
            EndpointEvent::EndpointDeprecated {
                endpoint_id: id(1),
                sunset,
                at: t(1),
            },
        ])
        .when_async(EndpointCommand::Deprecate {
            endpoint_id: id(1),
            sunset,
            at: t(2),
        })
        .await
        .then_expect_events(vec![]);
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::Deprecate {
            endpoint_id: id(1),
            sunset: Some(t(0)),
            at: t(1),
        })
        .await
        .then_expect_error(EndpointError::SunsetInPast);
}

#[tokio::test]
async fn activation_and_tenant_enablement_only_record_changes() {
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::SetActive {
            endpoint_id: id(1),
            active: true,
            at: t(1),
        })
        .await
        .then_expect_events(vec![]);
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::SetActive {
            endpoint_id: id(1),
            active: false,
            at: t(1),
        })
        .await
        .then_expect_events(vec![EndpointEvent::EndpointDeactivated {
            endpoint_id: id(1),
            at: t(1),
        }]);
    let acme: TenantId = "acme".parse().unwrap();
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::SetTenantEnabled {
            endpoint_id: id(1),
            tenant: acme.clone(),
            enabled: false,
            at: t(1),
        })
        .await
        .then_expect_events(vec![EndpointEvent::EndpointDisabledForTenant {
            endpoint_id: id(1),
            tenant: acme.clone(),
            at: t(1),
        }]);
    EndpointTest::with(())
        .given(vec![registered(1, &["GET"], "/x")])
        .when_async(EndpointCommand::SetTenantEnabled {
            endpoint_id: id(1),
            tenant: acme,
            enabled: true,
            at: t(1),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn commands_on_an_unknown_endpoint_are_refused() {
    EndpointTest::with(())
        .given_no_previous_events()
        .when_async(EndpointCommand::SetActive {
            endpoint_id: id(1),
            active: false,
            at: t(1),
        })
        .await
        .then_expect_error(EndpointError::EndpointNotFound);
}

#[test]
fn one_stream_per_route_shape() {
    let a: PathTemplate = "/files/{id}".parse().unwrap();
    let b: PathTemplate = "/files/{file_id}/".parse().unwrap();
    assert_eq!(route_stream_id(&a), route_stream_id(&b));
    assert_ne!(route_stream_id(&a), route_stream_id(&"/files".parse().unwrap()));
}
