#!/usr/bin/env bash
# nginx behind a Service, and a busybox client: a policy on the nginx pods admits only clients labelled
# role=apiclient; the unlabelled client times out until it is labelled. (This machine's wget is GNU wget,
# which retries: `--tries=1` makes it give up as busybox's wget in the original tutorial does.)
cd "$(dirname "$0")"
source ../lib.sh
up nginx-apiclient

run kubectl apply -f nginx.yaml
run kubectl run busybox --image=busybox -- sleep 1d
run kubectl rollout status deployment/nginx
run kubectl wait --for=condition=Ready pod/busybox
run kubectl get svc,pods

allowed kubectl exec busybox -- wget --spider --timeout=2 --tries=1 nginx

run kubectl apply -f access-nginx.yaml
denied kubectl exec busybox -- wget --spider --timeout=2 --tries=1 nginx

run kubectl label pod busybox role=apiclient
expect_output 'role=apiclient' kubectl get pod busybox --show-labels
allowed kubectl exec busybox -- wget --spider --timeout=2 --tries=1 nginx

run kubectl label pod busybox role-
denied kubectl exec busybox -- wget --spider --timeout=2 --tries=1 nginx
expect_output 'access-nginx +app=nginx-app' kubectl get netpol
echo; echo "tutorial nginx-apiclient: every step behaved as the tutorial shows"
