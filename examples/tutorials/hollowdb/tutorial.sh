#!/usr/bin/env bash
# A database that only its application may reach: pods labelled app=hollowapp reach hollowdb on TCP 3306,
# a rogue pod is refused.
cd "$(dirname "$0")"
source ../lib.sh
up hollowdb

run kubectl apply -f hollowdb.yaml
run kubectl rollout status deployment/hollowapp
run kubectl wait --for=condition=Ready pod/hollowdb pod/rogue
run kubectl get pods -o wide
APP=$(kubectl get pods -l app=hollowapp -o jsonpath='{.items[0].metadata.name}')

allowed kubectl exec ${APP} -- curl -sS --connect-timeout 5 hollowdb:3306
allowed kubectl exec rogue -- curl -sS --connect-timeout 5 hollowdb:3306

run kubectl apply -f hollowdb-allow-app.yaml
allowed kubectl exec ${APP} -- curl -sS --connect-timeout 5 hollowdb:3306
denied kubectl exec rogue -- curl -sS --connect-timeout 5 hollowdb:3306
# The database's other direction is untouched: it still reaches the app.
APP_IP=$(kubectl get pod ${APP} -o jsonpath='{.status.podIP}')
allowed kubectl exec hollowdb -- curl -sS --connect-timeout 5 ${APP_IP}:80
expect_output 'hollowdb-allow-app +app=hollowdb' kubectl get networkpolicy
run kubectl describe networkpolicy hollowdb-allow-app
echo; echo "tutorial hollowdb: every step behaved as the tutorial shows"
