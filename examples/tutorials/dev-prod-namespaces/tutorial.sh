#!/usr/bin/env bash
# Development and production namespaces, built with kubectl's imperative commands: deny all ingress in
# development, reopen it with an empty ingress rule, then let production admit HTTP only from namespaces
# labelled env=development, which works once the label is there, and only on port 80.
cd "$(dirname "$0")"
source ../lib.sh
up dev-prod

run kubectl create namespace development
run kubectl create namespace production
for ns in development production; do
  run kubectl create deployment webserver --image nginx --port=80 -n $ns
  run kubectl expose deployment webserver --port=80 -n $ns
  run kubectl run curl --image=curlimages/curl -n $ns -- sleep 1d
done
run kubectl create deployment redis --image redis --port=6379 -n production
run kubectl expose deployment redis --port=6379 -n production
for ns in development production; do
  run kubectl rollout status deployment/webserver -n $ns
  run kubectl wait --for=condition=Ready pod/curl -n $ns
done
run kubectl rollout status deployment/redis -n production
run kubectl get all -n production

allowed kubectl exec curl -n development -- curl -sI --connect-timeout 5 webserver
allowed kubectl exec curl -n production -- curl -sI --connect-timeout 5 webserver.development

# Deny all ingress in development, even from its own namespace.
run kubectl apply -f default-deny-ingress.yaml
denied kubectl exec curl -n development -- curl -sI --connect-timeout 5 webserver
denied kubectl exec curl -n production -- curl -sI --connect-timeout 5 webserver.development

# The same policy with an empty ingress rule admits everything again.
run kubectl apply -f allow-all-ingress.yaml
allowed kubectl exec curl -n development -- curl -sI --connect-timeout 5 webserver

# Production admits TCP 80 only from namespaces labelled env=development: not there yet.
run kubectl apply -f allow-devel-pod-to-http.yaml
denied kubectl exec curl -n development -- curl -sI --connect-timeout 5 webserver.production
run kubectl label namespace development env=development
allowed kubectl exec curl -n development -- curl -sI --connect-timeout 5 webserver.production
# ... on port 80 only: redis stays closed, and production's own pods are not in development.
denied kubectl exec curl -n development -- curl -s --connect-timeout 5 telnet://redis.production:6379
denied kubectl exec curl -n production -- curl -sI --connect-timeout 5 webserver.production
expect_output 'allow-devel-pod-to-http +<none>' kubectl get netpol -n production
echo; echo "tutorial dev-prod-namespaces: every step behaved as the tutorial shows"
