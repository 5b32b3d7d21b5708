"""ETSI EN 319 412-5 qcStatements and the OIDs the portal checks (asn1crypto has no definitions for them)."""
from __future__ import annotations

from asn1crypto import core

QC_STATEMENTS_EXTENSION = "1.3.6.1.5.5.7.1.3"
QC_COMPLIANCE = "0.4.0.1862.1.1"       # id-etsi-qcs-QcCompliance
QC_TYPE = "0.4.0.1862.1.6"             # id-etsi-qcs-QcType
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"     # id-etsi-qct-eseal
QC_TYPE_ESIGN = "0.4.0.1862.1.6.1"     # id-etsi-qct-esign
QC_SSCD = "0.4.0.1862.1.4"             # id-etsi-qcs-QcSSCD
# ETSI EN 319 411-2 certificate policies for qualified certificates of legal persons (seals).
QCP_L = "0.4.0.194112.1.1"
QCP_L_QSCD = "0.4.0.194112.1.3"
QUALIFIED_SEAL_POLICIES = {QCP_L: "QCP-l", QCP_L_QSCD: "QCP-l-qscd"}
ORGANIZATION_IDENTIFIER = "2.5.4.97"


class QcStatement(core.Sequence):
    _fields = [("statement_id", core.ObjectIdentifier), ("statement_info", core.Any, {"optional": True})]


class QcStatements(core.SequenceOf):
    _child_spec = QcStatement


class QcTypes(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


def encode_qc_statements(compliance: bool = True, qc_types: tuple[str, ...] = (QC_TYPE_ESEAL,),
                         sscd: bool = False) -> bytes:
    """DER of a qcStatements extension value (used by the test PKI and by nothing else)."""
    statements = []
    if compliance:
        statements.append(QcStatement({"statement_id": QC_COMPLIANCE}))
    if sscd:
        statements.append(QcStatement({"statement_id": QC_SSCD}))
    if qc_types:
        statements.append(QcStatement({"statement_id": QC_TYPE, "statement_info": QcTypes(list(qc_types))}))
    return QcStatements(statements).dump()


def decode_qc_statements(der: bytes) -> dict[str, list[str]]:
    """{statement OID: [qc type OIDs]} from the extension's DER value."""
    found: dict[str, list[str]] = {}
    for statement in QcStatements.load(der):
        oid = statement["statement_id"].dotted
        types: list[str] = []
        if oid == QC_TYPE and statement["statement_info"].native is not None:
            types = [t.dotted for t in QcTypes.load(statement["statement_info"].dump())]
        found[oid] = types
    return found
