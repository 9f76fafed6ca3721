"""The official SDK (alibabacloud-vod20170321) talks to the emulator server unmodified.

v3 (ACS3-HMAC-SHA256, the SDK default, which signs every header it sends) and v2 (HMAC-SHA1
RPC, ``signature_algorithm='v2'``) both run the whole project lifecycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

pytest.importorskip("alibabacloud_vod20170321")

from alibabacloud_tea_openapi.exceptions import ClientException  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.models import Config  # type: ignore[import-untyped]
from alibabacloud_vod20170321 import models  # type: ignore[import-untyped]
from alibabacloud_vod20170321.client import Client  # type: ignore[import-untyped]

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer

TIMELINE = json.dumps(
    {
        "VideoTracks": [
            {
                "VideoTrackClips": [
                    {"MediaId": "cc3308ac59615a54328bc3443", "In": 0, "Out": 5.5},
                    {"MediaId": "da87a9cff645cd88bc6d8326e4"},
                ]
            }
        ]
    },
    separators=(",", ":"),
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, EmulatorServer]]:
    emu = Emulator(config=EmulatorConfig(produce_delay=0.2))
    server = EmulatorServer(emu).start()
    try:
        yield emu, server
    finally:
        server.stop()
        emu.close()


def sdk(server: EmulatorServer, key_id: str, secret: str, algorithm: str | None) -> Client:
    return Client(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=f"127.0.0.1:{server.port}",
            protocol="http",
            signature_algorithm=algorithm,
        )
    )


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3-default", "v2"])
def test_project_lifecycle(served: tuple[Emulator, EmulatorServer], algorithm: str | None) -> None:
    emu, server = served
    creds = emu.demo_credentials
    client = sdk(server, creds.access_key_id, creds.access_key_secret, algorithm)
    title = f"宣传片 – café ☕ *{algorithm or 'v3'}* ~cut"

    added = client.add_editing_project(
        models.AddEditingProjectRequest(title=title, description="line1\nline2 & more")
    ).body
    project_id = added.project.project_id
    assert added.project.status == "Normal" and added.request_id

    got = client.get_editing_project(models.GetEditingProjectRequest(project_id=project_id)).body
    assert (got.project.title, got.project.description) == (title, "line1\nline2 & more")

    produced = client.produce_editing_project_video(
        models.ProduceEditingProjectVideoRequest(
            project_id=project_id,
            timeline=TIMELINE,
            title=title + " v2",
            produce_config='{"TemplateGroupId":"6d11e25ea30a4c465435c74"}',
            user_data='{"Extend":{"commit":"a1b2c3d"}}',
        )
    ).body
    assert produced.project_id == project_id and len(produced.media_id) == 32

    found = client.search_editing_project(
        models.SearchEditingProjectRequest(
            title=title + " v2",
            status="Producing,Produced",
            sort_by="CreationTime:Desc",
            page_size=100,
        )
    ).body
    assert found.total == 1
    [item] = found.project_list.project
    assert item.project_id == project_id and item.status == "Producing"

    after = client.get_editing_project(models.GetEditingProjectRequest(project_id=project_id))
    assert json.loads(after.body.project.timeline) == json.loads(TIMELINE)

    client.delete_editing_project(models.DeleteEditingProjectRequest(project_ids=project_id))
    with pytest.raises(ClientException) as info:
        client.get_editing_project(models.GetEditingProjectRequest(project_id=project_id))
    assert info.value.code == "InvalidEditingProject.NotFound"
    assert info.value.status_code == 404

    version = "v2" if algorithm == "v2" else "v3"
    mine = [c for c in emu.calls() if c.project_id == project_id]
    assert {c.signature_version for c in mine} == {version}
    assert [c.action for c in mine][-3:] == [
        "GetEditingProject",
        "DeleteEditingProject",
        "GetEditingProject",
    ]


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3-default", "v2"])
def test_wrong_secret_is_signature_does_not_match(
    served: tuple[Emulator, EmulatorServer], algorithm: str | None
) -> None:
    emu, server = served
    client = sdk(server, emu.demo_credentials.access_key_id, "not-the-secret", algorithm)
    with pytest.raises(ClientException) as info:
        client.search_editing_project(models.SearchEditingProjectRequest(title="x"))
    assert info.value.code == "SignatureDoesNotMatch" and info.value.status_code == 400
    prefix = "v2" if algorithm == "v2" else "v3"
    expected = "POST&%2F&" if prefix == "v2" else "ACS3-HMAC-SHA256\n"
    assert f"server string to sign is:{expected}" in info.value.message


def test_unknown_key_is_invalid_access_key_id(served: tuple[Emulator, EmulatorServer]) -> None:
    _, server = served
    with pytest.raises(ClientException) as info:
        sdk(server, "LTAInobody", "x", None).get_editing_project(
            models.GetEditingProjectRequest(project_id="p")
        )
    assert info.value.code == "InvalidAccessKeyId.NotFound" and info.value.status_code == 404


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3-default", "v2"])
def test_sts_credentials(served: tuple[Emulator, EmulatorServer], algorithm: str | None) -> None:
    emu, server = served
    emu.add_access_key("STS.interop", "sts-secret", security_token="STS.tokenvalue+/=")
    config = Config(
        access_key_id="STS.interop",
        access_key_secret="sts-secret",
        security_token="STS.tokenvalue+/=",
        endpoint=f"127.0.0.1:{server.port}",
        protocol="http",
        signature_algorithm=algorithm,
    )
    body = Client(config).search_editing_project(models.SearchEditingProjectRequest()).body
    assert body.request_id
    last = emu.calls()[-1]
    assert last.access_key_id == "STS.interop" and "SecurityToken" not in last.params
