"""The deterministic investigation's reasoning: observations in, ranked hypotheses out.

No I/O happens here. ``analyse`` receives what the sources returned (series per component, mined
log templates, changes) and:
1. scores every series for a sustained departure that begins in the window (tools.anomaly);
2. fixes the symptom's onset on the investigated service;
3. profiles each component: how strongly and how early (relative to the onset) it went wrong;
4. collects the support for each (category, component): changes that landed shortly before the
   onset, log templates that appeared or spiked, and metric signatures (hardware faults,
   saturation, traffic, quality, upstream throttling);
5. ranks hypotheses, says why each alternative ranks lower, and proposes mitigations.

The modules, in the order the analysis runs: series (departures per component), onset (the
service and when its symptom began), evidence (numbered evidence per source), topology (knock-on
effects), signatures and candidates (support per cause and component), ranking (hypotheses),
mitigations; pipeline runs them, model holds the data they share.
"""

from tools.analysis.candidates import HOST_ONLY_WEIGHT, SCOPE_LABELS
from tools.analysis.evidence import LOG_LEAD_S, MAX_LOG_EVIDENCE, MAX_METRIC_EVIDENCE, rollbacks, undone_at
from tools.analysis.model import (
                                  ATTRIBUTION_LABELS,
                                  ERROR_LEVELS,
                                  QUALITY_KINDS,
                                  Candidate,
                                  Observations,
                                  Precedent,
                                  Profile,
                                  SeriesAnomaly,
)
from tools.analysis.onset import LOG_ONSET_STRENGTH
from tools.analysis.pipeline import analyse
from tools.analysis.series import CALLEE_LABELS, OUTBOUND, OUTBOUND_WEIGHT, THROTTLING, callee_of
from tools.analysis.signatures import HOST_SLACK_S, NODE_LABELS

__all__ = [
    "analyse", "Observations", "SeriesAnomaly", "Profile", "Candidate", "Precedent",
    "SCOPE_LABELS", "MAX_METRIC_EVIDENCE", "MAX_LOG_EVIDENCE", "ATTRIBUTION_LABELS", "CALLEE_LABELS", "OUTBOUND",
    "OUTBOUND_WEIGHT", "THROTTLING", "callee_of", "ERROR_LEVELS", "LOG_LEAD_S", "LOG_ONSET_STRENGTH", "undone_at",
    "rollbacks", "HOST_ONLY_WEIGHT", "NODE_LABELS", "HOST_SLACK_S", "QUALITY_KINDS",
]
