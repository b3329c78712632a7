#!/usr/bin/env bash
# Frontend, not-frontend and backend (the Cilium-style "frontend / backend" tutorial): deny ingress to the
# backend, then additively allow only the frontend; then a namespace-wide default deny with a DNS exception,
# where the backend's ingress allow is not enough until the frontend's egress allows it too.
cd "$(dirname "$0")"
source ../lib.sh
up frontend-backend

run kubectl apply -f simple-app.yaml
run kubectl rollout status deployment/backend
run kubectl wait --for=condition=Ready pod -l app=frontend
FRONTEND=$(kubectl get pods -l app=frontend -o jsonpath='{.items[0].metadata.name}')
NOT_FRONTEND=$(kubectl get pods -l app=not-frontend -o jsonpath='{.items[0].metadata.name}')
run kubectl get pods -o wide

# No policy: both clients reach the backend through its Service name.
allowed kubectl exec -ti ${FRONTEND} -- curl -I --connect-timeout 5 backend:8080
allowed kubectl exec -ti ${NOT_FRONTEND} -- curl -I --connect-timeout 5 backend:8080

# Isolate the backend for ingress: nobody gets in.
run kubectl apply -f backend-ingress-deny.yaml
denied kubectl exec -ti ${FRONTEND} -- curl -I --connect-timeout 5 backend:8080
denied kubectl exec -ti ${NOT_FRONTEND} -- curl -I --connect-timeout 5 backend:8080

# Policies add up: allowing the frontend opens the way for it alone; the deny policy stays.
run kubectl apply -f backend-allow-ingress-frontend.yaml
expect_output 'backend-allow-ingress-frontend +app=backend' kubectl get netpol
allowed kubectl exec -ti ${FRONTEND} -- curl -I --connect-timeout 5 backend:8080
denied kubectl exec -ti ${NOT_FRONTEND} -- curl -I --connect-timeout 5 backend:8080

# A default deny for the whole namespace, DNS excepted: the frontend's own egress now blocks it.
run kubectl apply -f default-deny-allow-dns.yaml
denied kubectl exec -ti ${FRONTEND} -- curl -I --connect-timeout 5 backend:8080
run kubectl apply -f frontend-egress-to-backend.yaml
allowed kubectl exec -ti ${FRONTEND} -- curl -I --connect-timeout 5 backend:8080
denied kubectl exec -ti ${NOT_FRONTEND} -- curl -I --connect-timeout 5 backend:8080

run kubectl delete -f backend-ingress-deny.yaml -f backend-allow-ingress-frontend.yaml
expect_output 'default-deny-all' kubectl get netpol
echo; echo "tutorial frontend-backend: every step behaved as the tutorial shows"
