#!/usr/bin/env bash
# The five default policies of the Kubernetes documentation, one after the other in namespace demo:
# deny all ingress, allow all ingress, deny all egress (which also stops DNS), allow all egress, deny all.
cd "$(dirname "$0")"
source ../lib.sh
up default-policies

run kubectl apply -f app.yaml
run kubectl rollout status deployment/web -n demo
run kubectl wait --for=condition=Ready pod/client -n demo
WEB_IP=$(kubectl get pods -n demo -l app=web -o jsonpath='{.items[0].status.podIP}')
allowed kubectl exec -n demo client -- curl -sI --connect-timeout 5 web

run kubectl apply -n demo -f default-deny-ingress.yaml
denied kubectl exec -n demo client -- curl -sI --connect-timeout 5 web
run kubectl apply -n demo -f allow-all-ingress.yaml
allowed kubectl exec -n demo client -- curl -sI --connect-timeout 5 web
run kubectl delete -n demo networkpolicy default-deny-ingress allow-all-ingress

# Egress isolation stops name resolution too (no DNS exception): by name, curl cannot even resolve.
run kubectl apply -n demo -f default-deny-egress.yaml
denied kubectl exec -n demo client -- curl -sI --connect-timeout 5 web
denied kubectl exec -n demo client -- curl -sI --connect-timeout 5 ${WEB_IP}
run kubectl apply -n demo -f allow-all-egress.yaml
allowed kubectl exec -n demo client -- curl -sI --connect-timeout 5 web
run kubectl delete -n demo networkpolicy default-deny-egress allow-all-egress

run kubectl apply -n demo -f default-deny-all.yaml
denied kubectl exec -n demo client -- curl -sI --connect-timeout 5 ${WEB_IP}
expect_output 'default-deny-all +<none>' kubectl get netpol -n demo
run kubectl delete -n demo -f default-deny-all.yaml
allowed kubectl exec -n demo client -- curl -sI --connect-timeout 5 web
echo; echo "tutorial default-policies: every step behaved as the tutorial shows"
