-- Argo CD health check for acqp-operator.io/AcqpAuthorization.
-- Install it as resource.customizations.health.acqp-operator.io_AcqpAuthorization in argocd-cm
-- (see the chart's README.md). Lua 5.1, as Argo CD runs it; `obj` is the live resource.
--
-- The operator writes kstatus-style conditions: Ready always, Reconciling only while work is
-- in progress, Stalled only when a human must act. The mapping:
--   status older than the spec                 -> Progressing (nothing below is current yet)
--   Stalled=True                               -> Degraded, with the condition's message
--   Ready=True                                 -> Healthy
--   waiting for the ACQP to authorize          -> Suspended (see below)
--   anything else                              -> Progressing, with Ready's message
--
-- Why Suspended while the ACQP has the authorization URL: the operator has done all it can and
-- the next step is a person at the ACQP opening the URL, which may take days. That is what
-- Argo CD's Suspended means ("waiting for some external event to resume", like a paused
-- rollout). Progressing would claim the operator is still working and would keep an
-- application spinning, tripping alerts and `argocd app wait --health` timeouts for something
-- no controller can finish; Degraded would page someone although nothing is wrong.

local hs = {}

-- Reasons under which Reconciling=True means the operator waits for the ACQP's grant.
local waiting_for_acqp = {
  AwaitingAuthorization = "send the authorization URL to the ACQP",
  ScopeChangePending = "the ACQP must authorize the added products",
  Reinvited = "the ACQP must authorize again",
}

local function condition(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  if c.reason ~= nil and c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.message or c.reason or fallback
end

local generation = obj.metadata and obj.metadata.generation
local status = obj.status

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for acqp-operator to reconcile this resource"
  return hs
end

local ready = condition(status.conditions, "Ready")
local stalled = condition(status.conditions, "Stalled")
local reconciling = condition(status.conditions, "Reconciling")

-- A status written for an older spec says nothing about the current one.
local function stale(observed)
  return generation ~= nil and (observed == nil or observed < generation)
end
if stale(status.observedGeneration) or (ready ~= nil and stale(ready.observedGeneration)) then
  hs.status = "Progressing"
  hs.message = "Waiting for acqp-operator to reconcile generation " .. tostring(generation)
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if reconciling ~= nil and reconciling.status == "True" and waiting_for_acqp[reconciling.reason] ~= nil then
  hs.status = "Suspended"
  hs.message = describe(reconciling, waiting_for_acqp[reconciling.reason])
  -- The URL is what the reader of this message must forward, so put it where they look.
  if status.authorizationUrl ~= nil then
    hs.message = hs.message .. " (authorization URL: " .. status.authorizationUrl .. ")"
  end
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready or reconciling, "Waiting for acqp-operator")
return hs
