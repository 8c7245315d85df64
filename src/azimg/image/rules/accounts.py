"""Account and SSH rules (prerequisites.md §6): no build users, secrets or host keys left."""

from __future__ import annotations

from azimg.image.findings import Finding, Severity
from azimg.image.inspect import ImageFacts
from azimg.image.rules import A, B, CheckContext, Rule, W, blocked, ev, ev_loc
from azimg.image.rules.agents import WAAGENT_TRACES

SEC_01 = Rule(
    "SEC-01",
    W,
    "no account has a usable or empty password; root is locked",
    "passwd -l root (deprovision writes root:*LOCK*:...)",
)

SEC_02 = Rule(
    "SEC-02",
    W,
    "no leftover login users (UID >= 1000) from the build",
    "waagent -deprovision+user",
)

SEC_03 = Rule("SEC-03", W, "no /root/.ssh/authorized_keys", "rm /root/.ssh/authorized_keys")

SEC_04 = Rule("SEC-04", W, "shell histories absent or empty", "delete the history files")

SEC_05 = Rule(
    "SEC-05",
    W,
    "no SSH host keys in a generalized image (regenerated at provisioning)",
    "rm /etc/ssh/ssh_host_*_key* (waagent -deprovision does it)",
)

SEC_06 = Rule(
    "SEC-06",
    W,
    "sudoers has no 'Defaults targetpw' and no 'ALL ALL=(ALL) ALL'",
    "comment the lines out",
)

SEC_09 = Rule(
    "SEC-09", A, "/etc/machine-id empty or 'uninitialized'", "truncate -s0 /etc/machine-id"
)

SEC_11 = Rule(
    "SEC-11",
    W,
    "the image is generalized: no traces of the build VM remain",
    "cloud-init clean --logs --seed; waagent -force -deprovision+user; clear histories",
)


def check_accounts(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    why = blocked(g, "accounts")
    if why:
        return [SEC_01.unreadable(why)]
    out = []
    bad = [a for a in g.accounts.users if a.password in ("hash", "empty")]
    root = next((a for a in g.accounts.users if a.name == "root"), None)
    evs = [ev(a.where, f"{a.name}: {a.password} password") for a in bad]
    if root is not None and root.password == "none":
        evs.append(ev(root.where, "root has no shadow entry"))
    out.append(SEC_01.check(not evs, *evs or (ev("/etc/shadow", "all locked"),)))
    if ctx.generalized:
        humans = [a for a in g.accounts.users if 1000 <= a.uid < 65534 and a.can_login]
        out.append(SEC_02.check(not humans, *(ev(a.where, a.name) for a in humans)))
        keys = g.accounts.root_authorized_keys
        ok = keys is None or not keys.value or "Please login as the user" in keys.value
        out.append(
            SEC_03.check(ok, ev(keys.where, "present") if keys else ev("/root/.ssh", "no keys"))
        )
        full = [h for h in g.accounts.histories if h.value != "0"]
        out.append(SEC_04.check(not full, *(ev(h.where, f"{h.value} bytes") for h in full)))
        out.append(
            SEC_05.check(
                not g.accounts.ssh_host_keys, *(ev(k) for k in g.accounts.ssh_host_keys[:4])
            )
        )
        mid = g.system.machine_id
        out.append(
            SEC_09.check(mid in (None, "", "uninitialized"), ev("/etc/machine-id", mid or "empty"))
        )
        traces = []
        if "/var/lib/waagent/provisioned" in g.agents.waagent_state:
            traces.append("AGT-05")
        if any(WAAGENT_TRACES.search(p) for p in g.agents.waagent_state):
            traces.append("AGT-06")
        if g.agents.cloud_state:
            traces.append("AGT-11")
        if [h for h in g.accounts.histories if h.value != "0"]:
            traces.append("SEC-04")
        if g.accounts.ssh_host_keys:
            traces.append("SEC-05")
        if g.network.leases:
            traces.append("NET-09")
        out.append(
            SEC_11.check(not traces, ev("aggregate", ", ".join(traces) or "clean"), traces=traces)
        )
    out.append(SEC_06.check(not g.accounts.sudoers, *(ev_loc(x) for x in g.accounts.sudoers)))
    return out


SSH_01 = Rule(
    "SSH-01",
    B,
    "OpenSSH server installed and enabled at boot",
    "install openssh-server and enable ssh.service / sshd.service",
)

SSH_02 = Rule(
    "SSH-02",
    A,
    "ClientAliveInterval between 30 and 235 (180 recommended)",
    "set ClientAliveInterval 180 in sshd_config",
)

SSH_03 = Rule(
    "SSH-03",
    A,
    "no forced PasswordAuthentication yes in a generalized image",
    "decide explicitly; prefer PasswordAuthentication no",
)


def check_ssh(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    g = facts.guest
    out = []
    why = blocked(g, "ssh", "units")
    if why:
        out.append(SSH_01.unreadable(why))
    elif g.os.family != "flat":
        detail = f"sshd {'installed' if g.accounts.sshd_installed else 'absent'}, " + (
            "enabled" if g.accounts.sshd_enabled else "not enabled"
        )
        out.append(
            SSH_01.check(
                g.accounts.sshd_installed and g.accounts.sshd_enabled, ev("/usr/sbin/sshd", detail)
            )
        )
    cai = g.accounts.sshd_config.get("clientaliveinterval")
    sev = Severity.warning if ctx.marketplace else None
    if cai is None:
        out.append(
            SSH_02.failed(ev("/etc/ssh/sshd_config", "ClientAliveInterval not set"), severity=sev)
        )
    else:
        ok = cai.value.isdigit() and 30 <= int(cai.value) <= 235
        f = SSH_02.passed(ev_loc(cai)) if ok else SSH_02.failed(ev_loc(cai), severity=sev)
        out.append(f)
    pa = g.accounts.sshd_config.get("passwordauthentication")
    if ctx.generalized and pa is not None:
        out.append(SSH_03.check(pa.value.lower() != "yes", ev_loc(pa)))
    return out


SEC_10 = Rule(
    "SEC-10",
    A,
    "no subscription or credential material from the build",
    "subscription-manager unregister; remove /etc/zypp/credentials.d/*",
)


def check_credentials(facts: ImageFacts, ctx: CheckContext) -> list[Finding]:
    """SEC-10: subscription certificates and agent private keys from the build."""
    g = facts.guest
    creds = [
        p
        for p in ("/etc/pki/consumer/cert.pem", "/etc/pki/consumer/key.pem")
        if p in g.system.present
    ] + [p for p in g.agents.waagent_state if p.endswith(".prv")]
    return [SEC_10.check(not creds, *(ev(p) for p in creds))]
